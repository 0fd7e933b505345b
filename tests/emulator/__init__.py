"""Tests of the Auth0 emulator itself, over real HTTP."""
