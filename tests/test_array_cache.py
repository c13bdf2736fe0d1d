"""The on-disk array cache: a disk that cannot take the array is one clear user error."""

from __future__ import annotations

import numpy as np
import pytest

from cifar.array_cache import ArrayCache
from cifar.errors import CifarError


def test_an_array_larger_than_the_disk_is_refused_before_writing(tmp_path):
    """200 TB of float16 fits no test machine: the message names the folder, need and free."""
    cache = ArrayCache(tmp_path / "cache", log=lambda _: None)
    with pytest.raises(CifarError, match="cache") as err:
        cache.get_or_build("k", (10**7, 10**7), lambda out: None, label="features")
    message = str(err.value)
    assert str(tmp_path / "cache") in message
    assert "needs 186264.5 GiB" in message and "GiB free" in message
    assert not list((tmp_path / "cache").glob("*.npy"))  # nothing half-written


def test_a_cache_folder_that_cannot_be_created_is_a_user_error(tmp_path):
    """A path under a regular file (what a read-only or wrong --runs-dir looks like to root)."""
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("")
    cache = ArrayCache(blocker / "cache", log=lambda _: None)
    with pytest.raises(CifarError, match="cannot write") as err:
        cache.get_or_build("k", (4, 4), lambda out: out.fill(1), dtype="uint8")
    assert str(blocker / "cache") in str(err.value)
    assert isinstance(err.value.__cause__, OSError)
    np.testing.assert_array_equal(  # a writable folder still works
        ArrayCache(tmp_path / "ok", log=lambda _: None).get_or_build(
            "k", (2,), lambda out: out.fill(3), dtype="uint8"
        ),
        [3, 3],
    )
