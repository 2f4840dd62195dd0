"""Fixtures of the latent toolkit's tests."""
import pytest

from vae_core.latent import encode_dataset


@pytest.fixture(scope="module")
def digits_encoding(trained_digits_vae, digits):
    return encode_dataset(trained_digits_vae, digits.train.x, digits.train.y)
