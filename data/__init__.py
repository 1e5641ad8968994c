"""The bundled dataset files (see README.md here), installed as the ``twitter_dataset`` package data."""
