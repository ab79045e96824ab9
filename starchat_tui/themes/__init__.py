"""The themes shipped with starchat-tui: one TOML file per theme (Textual colours and a Pygments style)."""
