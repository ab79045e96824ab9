"""Line mode (``starchat-tui --plain``): the chat as a prompt_toolkit prompt, for terminals where a full-screen
app is unwanted. A skin over :mod:`starchat_tui.session`: input and output here, chat logic there."""
