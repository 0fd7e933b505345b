"""The documentation, the README and the pytest plugin, checked against what they describe."""
