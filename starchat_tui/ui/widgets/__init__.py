"""Widgets of the chat app, one idea each."""
