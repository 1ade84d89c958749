"""Places: communes suggested by name prefix or postcode, with a centre point a search can start from.

`matching` is the pure part (folding, the index, ranking); `catalogue` loads the communes file generated at
build time from official open data (infra/places_data.py, `make places`) and shipped with the function.
"""
