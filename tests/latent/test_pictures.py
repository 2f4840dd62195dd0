"""Pictures (vae_core.latent.pictures): uint8 images and grids, image files in, PNG and animated GIF out."""
import io

import numpy as np
import pytest
import torch
from PIL import Image

from vae_core.errors import UserInputError
from vae_core.latent import animated_gif, image_from_bytes, image_grid, png_bytes, to_uint8

from ._helpers import _png, _rand


class TestDisplay:
    @pytest.mark.parametrize("c", [1, 3])
    def test_to_uint8(self, c):
        images = torch.tensor([0.0, 1.0, 0.5, 1.5]).reshape(1, 1, 2, 2).expand(2, c, 2, 2)
        out = to_uint8(images)
        assert out.dtype == np.uint8 and out.shape == (2, 2, 2, c)
        assert out[0, :, :, 0].tolist() == [[0, 255], [128, 255]]

    def test_scaled_digit_is_crisp(self, digits):
        digit = digits.train.x[:1]  # (1, 1, 8, 8)
        grid = image_grid(digit, nrow=1, padding=0, scale=4)
        assert grid.dtype == np.uint8 and grid.shape == (32, 32, 3)
        pixels = to_uint8(digit)[0, :, :, 0]  # (8, 8)
        expected = np.repeat(np.repeat(pixels, 4, axis=0), 4, axis=1)  # every pixel a 4x4 block, no blending
        for channel in range(3):
            np.testing.assert_array_equal(grid[:, :, channel], expected)

    @pytest.mark.parametrize("n, c, nrow, padding, pad_value", [
        (1, 1, 4, 2, 1.0), (5, 1, 3, 1, 1.0), (6, 3, 3, 0, 0.0), (7, 3, 10, 2, 0.5), (9, 1, 1, 1, 1.0)])
    def test_grid_equals_torchvisions_make_grid(self, n, c, nrow, padding, pad_value):
        from torchvision.utils import make_grid  # the reference: the app itself does not import torchvision

        images = _rand(n, c, 5, 7)
        expected = make_grid(images, nrow=nrow, padding=padding, pad_value=pad_value)  # (3, H', W')
        expected = (expected * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
        np.testing.assert_array_equal(image_grid(images, nrow=nrow, padding=padding, pad_value=pad_value), expected)

    def test_grid_layout(self):
        images = _rand(6, 3, 8, 8)
        grid = image_grid(images, nrow=3, padding=1, scale=2)
        assert grid.shape == (2 * (2 * 9 + 1), 2 * (3 * 9 + 1), 3)
        assert (grid[0] == 255).all()  # the white padding
        np.testing.assert_array_equal(grid[2:18:2, 2:18:2], to_uint8(images)[0])  # the first image, top-left


class TestImageFromBytes:
    def test_rgb_file_to_a_grey_model_shape(self):
        picture = np.zeros((40, 40, 3), dtype=np.uint8)
        picture[:, 20:] = 255  # right half white
        x = image_from_bytes(_png(picture, "RGB"), (1, 8, 8))
        assert x.shape == (1, 1, 8, 8)
        assert x[0, 0, :, :4].max() == 0 and x[0, 0, :, 4:].min() == pytest.approx(1.0)
        inverted = image_from_bytes(_png(picture, "RGB"), (1, 8, 8), invert=True)
        torch.testing.assert_close(inverted, 1 - x)

    def test_grey_file_to_a_colour_model(self):
        x = image_from_bytes(_png(np.full((5, 7), 128, dtype=np.uint8), "L"), (3, 16, 16))
        assert x.shape == (1, 3, 16, 16)
        assert x.sub(128 / 255).abs().max() < 1e-5

    def test_garbage_is_a_user_error(self):
        with pytest.raises(UserInputError, match="PNG or JPEG"):
            image_from_bytes(b"not an image at all", (1, 8, 8))


class TestPngAndGif:
    def test_png_round_trip(self):
        picture = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
        back = np.asarray(Image.open(io.BytesIO(png_bytes(picture))))
        assert np.array_equal(back, picture)

    @pytest.mark.parametrize("n", [2, 7, 24])
    def test_gif_has_exactly_n_frames_even_when_they_are_equal(self, n):
        images = torch.full((n, 1, 8, 8), 0.5)  # a collapsed model: every step the same image
        gif = animated_gif(images, scale=4)
        with Image.open(io.BytesIO(gif)) as im:
            assert im.n_frames == n
            assert im.info.get("loop") == 0  # loops forever
            assert im.size == (32, 32 + 4)  # upscaled 4x, plus the progress bar

    def test_gif_frames_are_the_images_upscaled_without_blur(self):
        images = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
        with Image.open(io.BytesIO(animated_gif(images, scale=3, progress_bar=False))) as im:
            for i in range(3):
                im.seek(i)
                frame = np.asarray(im.convert("L"))
                want = to_uint8(images[i:i + 1])[0, :, :, 0].repeat(3, 0).repeat(3, 1)
                assert np.abs(frame.astype(int) - want.astype(int)).max() <= 2  # GIF palette rounding only

    def test_gif_refusals(self):
        with pytest.raises(ValueError, match="non-empty"):
            animated_gif(torch.empty(0, 1, 8, 8))
        with pytest.raises(ValueError, match="pixels wide"):
            animated_gif(torch.rand(20, 1, 8, 8), scale=1)
