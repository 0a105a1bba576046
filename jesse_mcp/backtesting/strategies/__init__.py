"""Built-in Jesse strategies. Importing a module here imports Jesse: only worker processes do that."""
