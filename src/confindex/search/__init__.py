"""The Whoosh index (index), the query language (query), where a hit matches (locate) and the
hits themselves (hits)."""
