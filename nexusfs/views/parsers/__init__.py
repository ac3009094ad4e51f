"""One module per format family; each has PARSER_VERSION and imports its library lazily."""
