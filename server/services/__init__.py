"""Business rules as verb-named functions.  They flush, never commit, and never talk HTTP."""
