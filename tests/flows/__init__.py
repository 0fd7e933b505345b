"""Flows by feature: the app, the emulator and Redis working together over real HTTP."""
