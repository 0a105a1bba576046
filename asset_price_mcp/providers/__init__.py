"""One module per price provider: a request builder and a pure parser of the provider's real response shape."""
