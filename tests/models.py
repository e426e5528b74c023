"""Models shared by the test suite: the Repository contract's own, which core.testing ships."""

from core.testing.contracts.models import Article, Author, Comment, Document

__all__ = ("Article", "Author", "Comment", "Document")
