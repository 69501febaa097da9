"""Text of a value that may refuse to give it: an exception's ``__str__`` can raise too."""


def safe_text(value: object) -> str:
    """``str(value)``, or a placeholder naming its type when ``__str__`` raises."""
    try:
        return str(value)
    except Exception as exc:
        return f"<{type(value).__name__}: str() raised {type(exc).__name__}>"
