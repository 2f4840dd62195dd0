"""What the pages share, one module per concern; the page scripts themselves are in app_pages/.

Nothing here does maths (that is vae_core's job); nothing heavy runs on a rerun: models are cached by file content,
data sets by their recipe and the sha256 of the file they came from."""
