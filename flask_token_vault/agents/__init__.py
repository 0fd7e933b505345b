"""Token Vault tools as tools of the agent frameworks Flask apps use.

One module per framework, each imported only when an app imports it (the frameworks are
optional extras): ``langchain`` (``[langchain]``, a ``langchain_core`` ``StructuredTool``) and
``openai_agents`` (``[openai-agents]``, an OpenAI Agents SDK ``FunctionTool``). Each wraps a
:func:`~flask_token_vault.token_vault_tool` and nothing else: the same handle, cache and single
flight, and the framework's own error handling never turns a
:class:`~flask_token_vault.TokenVaultInterrupt` into text for the model; it reaches the code
that runs the agent, which answers it.

(Layer: on top of the request-time API, beside the provider SDK adapters.)
"""
