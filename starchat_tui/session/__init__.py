"""The chat session every front-end shares: the conversation and its saving, the stream-and-save loop and the
slash-command registry. No widgets, no prompt_toolkit and no model code live here."""
