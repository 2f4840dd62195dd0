"""Built-in sources (vae_core.data.builtin, .mnist): digits, shapes, MNIST bundled, Fashion-MNIST offline."""
from __future__ import annotations

import pytest
import torch

from vae_core.data import BUILTIN_SOURCES, SHAPE_FACTOR_NAMES, SHAPE_FACTOR_SIZES, DataSplit, load_data
from vae_core.errors import DataError

from ._helpers import assert_valid_split, write_fashion_mnist_cache


class TestBuiltinSources:
    def test_digits(self):
        split = load_data("digits")
        assert_valid_split(split)
        assert split.input_shape == (1, 8, 8)
        assert len(split.train) + len(split.test) == 1797
        assert len(split.test) == round(1797 * 0.2)
        assert split.label_names == tuple("0123456789") and split.num_classes == 10
        assert split.name == "digits" and split.train.factors is None
        assert split.train.x.max() == 1.0  # 16/16: values were divided by 16

    @pytest.mark.parametrize("source, size", [("shapes", 32), ("shapes64", 64)])
    def test_shapes(self, source, size):
        split = load_data(source)
        assert_valid_split(split)
        assert split.input_shape == (1, size, size)
        assert len(split.train) + len(split.test) == 20_000
        assert split.label_names == ("square", "ellipse", "heart")
        assert split.name == source
        for part in (split.train, split.test):
            assert ((part.x == 0) | (part.x == 1)).all() and part.x.max() == 1  # binary
            assert part.factors.shape == (len(part), 5) and part.factors.dtype == torch.int64
            assert part.factor_names == SHAPE_FACTOR_NAMES == ("shape", "scale", "orientation", "pos_x", "pos_y")
            assert part.factor_sizes == SHAPE_FACTOR_SIZES == (3, 6, 40, 32, 32)
            assert torch.equal(part.y, part.factors[:, 0])  # label = shape

    def test_unknown_source_names_the_accepted_kinds(self, tmp_path):
        for bad in ("mnsit", str(tmp_path / "notes.txt")):
            with pytest.raises(DataError, match="digits.*npz.*zip.*folder"):
                load_data(bad)
        (tmp_path / "notes.txt").write_text("hello")
        with pytest.raises(DataError, match="not a .npz file, .zip or folder"):
            load_data(tmp_path / "notes.txt")

    def test_image_size_must_match_fixed_size_sources(self):
        assert load_data("digits", image_size=8).input_shape == (1, 8, 8)
        with pytest.raises(DataError, match="image_size=32 does not apply to 'digits'"):
            load_data("digits", image_size=32)

    # 'mnist' is bundled (tests/test_mnist_bundle.py loads it with the network blocked); Fashion-MNIST is
    # downloaded once into the cache, so offline it must fail, fast and clearly.
    def test_fashion_mnist_offline_fails_fast(self, tmp_path, offline):
        # "Fast" as behaviour: the loader gives up after a probe bounded by its own time-out and never enters
        # torchvision's download, which retries every mirror with no time-out (minutes offline).
        message = r"could not download Fashion-MNIST.*'mnist' \(bundled\).*'digits'"
        with pytest.raises(DataError, match=message) as err:
            load_data("fashion-mnist", cache_dir=str(tmp_path))
        assert "\n" not in str(err.value)
        offline.assert_probed_within_the_time_out_and_never_downloaded("fashion-mnist")

    @pytest.mark.timeout(60)  # the safety net: a probe that nobody bounds would hang here
    def test_a_network_that_never_answers_does_not_hang_the_loader(self, tmp_path, offline):
        # A DNS look-up or a SYN dropped by a firewall never answers: the loader returns anyway, with the
        # offline message, because it waits for its probes only up to their time-out.
        offline.hang = True
        with pytest.raises(DataError, match="could not download Fashion-MNIST"):
            load_data("fashion-mnist", cache_dir=str(tmp_path))
        assert not offline.answered, "the loader only returned once the network answered"
        offline.assert_probed_within_the_time_out_and_never_downloaded("fashion-mnist")

    def test_fashion_mnist_loads_from_cache_without_network(self, tmp_path, offline):
        import torchvision.datasets

        write_fashion_mnist_cache(tmp_path, train=12, test=4)
        split = load_data("fashion-mnist", cache_dir=str(tmp_path))
        assert_valid_split(split)
        assert (len(split.train), len(split.test)) == (12, 4)  # the file's own split is kept
        assert split.input_shape == (1, 28, 28)
        assert split.label_names == tuple(torchvision.datasets.FashionMNIST.classes)
        assert split.test.y.tolist() == [0, 1, 2, 3]
        assert offline.connections == [] and offline.downloads == []  # the cache is enough: no network touched

    def test_builtin_sources_listed(self):
        assert BUILTIN_SOURCES == ("digits", "shapes", "shapes64", "mnist", "fashion-mnist")

    def test_hand_made_split_has_a_name(self):
        digits = load_data("digits")
        assert DataSplit(digits.train, digits.test, {"source": "bench"}).name == "bench"
