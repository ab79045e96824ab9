"""The shipped training recipes, installed as the package starchat_tui.recipes."""
