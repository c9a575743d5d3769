"""The held-out split's size (data.heldout_examples and its default) and where its windows come from:
after D and the validation windows, ids continuing, refused when the corpus is too small."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from kdplatform.data.examples import heldout_split, split_examples
from kdplatform.spec import HELDOUT_DEFAULT_CAP, DataSpec


def test_default_is_as_many_as_d_capped():
    assert DataSpec(num_examples=300).num_heldout == 300
    assert DataSpec(num_examples=3 * HELDOUT_DEFAULT_CAP).num_heldout == HELDOUT_DEFAULT_CAP
    assert DataSpec(num_examples=300, heldout_examples=0).num_heldout == 0
    assert DataSpec(num_examples=300, heldout_examples=1000).num_heldout == 1000
    with pytest.raises(ValidationError):
        DataSpec(heldout_examples=-1)


def test_heldout_windows_follow_d_and_val():
    windows = np.arange(20 * 4).reshape(20, 4)
    train, val = split_examples(windows, 8, 4)
    held = heldout_split(windows, 8, 4, 6)
    assert held.example_ids.tolist() == list(range(12, 18))
    np.testing.assert_array_equal(held.tokens, windows[12:18])
    ids = {*train.example_ids.tolist(), *val.example_ids.tolist()}
    assert not ids & set(held.example_ids.tolist())
    with pytest.raises(ValueError, match="distinct windows.*heldout_examples"):
        heldout_split(windows, 8, 4, 9)
