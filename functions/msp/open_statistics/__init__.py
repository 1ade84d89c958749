"""Open statistics: what the programme publishes of the tally's figures, with small counts suppressed.

`suppression` is the pure disclosure control (counts under 11 never shown exactly, nor derivable from a
published total); `figures` turns the latest tally's summary into the public document, closed months only.
"""
