"""Pure logic: no trio, psycopg, quart, httpx or hypercorn here; time and randomness come in."""
