"""pipeline.schemas.validate: pandera's verdict, with no reference cycle left behind."""

import gc

import pandas as pd
import pandera.pandas as pa
import pytest

from pipeline.schemas import validate


class Counts(pa.DataFrameModel):
    n: int

    class Config:
        coerce = True   # as the catalog's models: pandera validates a copy


def _frames_left_in_cycles(action) -> list:
    """The DataFrames only the cyclic collector would have freed after `action()`."""
    enabled = gc.isenabled()
    gc.disable()
    gc.collect()
    try:
        action()
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        return [o for o in gc.garbage if isinstance(o, pd.DataFrame)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        if enabled:
            gc.enable()


def test_plain_pandera_leaves_its_copy_in_a_cycle():
    """Why `validate` exists: pandera caches its accessor on the frame and on the copy it
    validates, and the accessor points back, so both wait for a full collection."""
    assert _frames_left_in_cycles(lambda: Counts.validate(pd.DataFrame({"n": ["1", "2"]}),
                                                          lazy=True))


def test_validate_leaves_no_frame_in_a_cycle():
    def check():
        frame = pd.DataFrame({"n": ["1", "2"]})
        validate(Counts, frame)
        assert "pandera" not in vars(frame)
        assert frame["n"].tolist() == ["1", "2"]   # coerced on pandera's copy, not here

    assert _frames_left_in_cycles(check) == []


def test_validate_raises_pandera_errors():
    frame = pd.DataFrame({"n": ["one"]})
    with pytest.raises(pa.errors.SchemaErrors):
        validate(Counts, frame)
    assert "pandera" not in vars(frame)
