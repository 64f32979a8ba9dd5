"""The page's words, one module per language (aigc/demo/i18n.py)."""
