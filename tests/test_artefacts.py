"""persistlib.artefacts on its own: the file each format writes, and what read_verified reads or refuses."""

from __future__ import annotations

import hashlib
import io
import threading
import zipfile

import joblib
import numpy as np
import pytest
from conftest import defined_in_main
from sklearn.ensemble import RandomForestClassifier

import persistlib as pl
from persistlib import artefacts, errors

TREE = "sklearn.tree._tree.Tree"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- writing


def test_dump_defaults_to_a_joblib_file_compressed_at_level_3(tmp_path, small_model):
    assert artefacts.dump(small_model, tmp_path / "default.pkl") is None
    artefacts.dump(small_model, tmp_path / "three.pkl", format="joblib", compress=3)
    artefacts.dump(small_model, tmp_path / "four.pkl", format="joblib", compress=4)
    default = (tmp_path / "default.pkl").read_bytes()
    assert default == (tmp_path / "three.pkl").read_bytes()
    assert default != (tmp_path / "four.pkl").read_bytes()  # the level shows in the bytes
    assert type(joblib.load(tmp_path / "default.pkl")).__name__ == "RandomForestClassifier"


@pytest.mark.parametrize("bad", [10, -1, ("zlib", 10), ("lz4",), ("zlib", 3, 1), ("snappy", 3), True, 3.0])
def test_check_compress_refuses_what_joblib_would_not_take(bad):
    with pytest.raises(errors.InvalidArgumentError, match=r"compress must be an int 0-9 or a \(method, level\) pair"):
        artefacts.check_compress(bad)


@pytest.mark.parametrize("good", [0, 9, ("zlib", 0), ("lz4", 9)])
def test_check_compress_accepts_levels_0_to_9(good):
    assert artefacts.check_compress(good) == good


def _skops_members(path):
    with zipfile.ZipFile(path) as z:
        infos = z.infolist()
    return {i.compress_type for i in infos}, sum(i.compress_size for i in infos)


@pytest.mark.parametrize("level", [0, ("zlib", 0)])
def test_a_skops_file_at_level_0_is_stored_uncompressed(tmp_path, small_model, level):
    found = artefacts.dump(small_model, tmp_path / "m.skops", format="skops", compress=level)
    assert found == [TREE]
    assert _skops_members(tmp_path / "m.skops")[0] == {zipfile.ZIP_STORED}


def test_a_skops_file_is_deflated_at_the_level_asked_for(tmp_path, small_model):
    sizes = {}
    for name, level in [("one", 1), ("nine", 9), ("pair1", ("zlib", 1)), ("pair9", ("lzma", 9))]:
        artefacts.dump(small_model, tmp_path / f"{name}.skops", format="skops", compress=level)
        types, sizes[name] = _skops_members(tmp_path / f"{name}.skops")
        assert types == {zipfile.ZIP_DEFLATED}, name
    # level 9 packs this forest about a fifth smaller than level 1, given as an int or as a pair's level
    # (skops files of the same model differ by a few dozen bytes, so compare with a wide margin)
    assert sizes["nine"] < 0.9 * sizes["one"] and sizes["pair9"] < 0.9 * sizes["pair1"]


def test_check_reviewed_returns_the_sorted_types_and_refuses_unlisted_ones():
    assert artefacts.check_reviewed(["b.B", "a.A"], None) == ["a.A", "b.B"]
    assert artefacts.check_reviewed(["b.B", "a.A"], ["a.A", "b.B", "c.C"]) == ["a.A", "b.B"]
    assert artefacts.check_reviewed([], []) == []
    with pytest.raises(pl.UntrustedTypeError, match=r"did not list in trusted_types: \['b.B', 'c.C'\]\. Review them"):
        artefacts.check_reviewed(["c.C", "a.A", "b.B"], ["a.A", "x.X"])


def test_dump_refuses_a_skops_model_holding_an_unlisted_type(tmp_path, small_model):
    with pytest.raises(pl.UntrustedTypeError, match=rf"trusted_types: \['{TREE}'\]"):
        artefacts.dump(small_model, tmp_path / "m.skops", format="skops", trusted_types=["numpy.float64"])
    assert artefacts.dump(small_model, tmp_path / "m.skops", format="skops", trusted_types=[TREE]) == [TREE]


def test_loads_names_the_artefact_generically_when_no_label_is_given(tmp_path, small_model):
    artefacts.dump(small_model, tmp_path / "m.skops", format="skops")
    data = (tmp_path / "m.skops").read_bytes()
    with pytest.raises(pl.UntrustedTypeError, match=rf"^the artefact holds type\(s\) \['{TREE}'\] that were not"):
        artefacts.loads(data, format="skops")
    model = artefacts.loads(data, format="skops", trusted_types=[TREE, "numpy.float64"])
    assert type(model).__name__ == "RandomForestClassifier"


# --------------------------------------------------------------------------- reading


@pytest.mark.parametrize("name", ["", "sub/model_v1.0.0.pkl", ".hidden.pkl", ".tmp-1234-model.pkl", 123, None])
def test_read_verified_refuses_a_name_that_is_not_a_plain_visible_file(tmp_path, name):
    data = b"model bytes"
    (tmp_path / "sub").mkdir()
    for real in ("sub/model_v1.0.0.pkl", ".hidden.pkl", ".tmp-1234-model.pkl"):
        (tmp_path / real).write_bytes(data)  # the file is there and matches: the name alone is refused
    with pytest.raises(pl.IntegrityError, match=r"which is not a plain file name in the registry; .* tampered"):
        artefacts.read_verified(tmp_path, name, sha256=_sha(data), size=len(data), version="1.0.0")


def test_read_verified_returns_the_bytes_with_or_without_a_recorded_size(tmp_path):
    data = b"x" * 1000
    (tmp_path / "model_v1.0.0.pkl").write_bytes(data)
    for size in (1000, None):
        got = artefacts.read_verified(tmp_path, "model_v1.0.0.pkl", sha256=_sha(data), size=size, version="1.0.0")
        assert got == data


def test_without_a_recorded_size_at_most_4_gib_is_read(tmp_path, monkeypatch):
    # reading 4 GiB to prove it would take the test minutes; the limit handed to the reader is what counts
    data = b"x" * 1000
    (tmp_path / "model_v1.0.0.pkl").write_bytes(data)
    limits = []
    real = artefacts.read_regular
    monkeypatch.setattr(
        artefacts,
        "read_regular",
        lambda path, *, max_bytes, what: (limits.append(max_bytes), real(path, max_bytes=max_bytes, what=what))[1],
    )
    artefacts.read_verified(tmp_path, "model_v1.0.0.pkl", sha256=_sha(data), size=None, version="1.0.0")
    assert limits == [4 * 1024**3]


@pytest.mark.parametrize("size", [0, 10, 999])
def test_read_verified_reads_one_byte_past_the_recorded_size_and_names_both_sizes(tmp_path, size):
    data = b"x" * 5000
    (tmp_path / "model_v1.0.0.pkl").write_bytes(data)
    with pytest.raises(pl.IntegrityError) as info:
        artefacts.read_verified(tmp_path, "model_v1.0.0.pkl", sha256=_sha(data), size=size, version="1.0.0")
    assert f"({size + 1:,} bytes ≠ recorded {size:,})" in str(info.value)  # never more than size + 1 read
    assert "it was NOT unpickled" in str(info.value)


def test_read_verified_names_both_hashes_and_says_a_skops_file_was_not_loaded(tmp_path):
    data, recorded = b"swapped model", _sha(b"original model")
    for name, unread in [("model_v1.0.0.skops", "loaded"), ("model_v1.0.0.pkl", "unpickled")]:
        (tmp_path / name).write_bytes(data)
        with pytest.raises(pl.IntegrityError) as info:
            artefacts.read_verified(tmp_path, name, sha256=recorded, size=len(data), version="1.0.0")
        message = str(info.value)
        assert message.startswith(
            f"v1.0.0: {name} does not match its card (sha256 {_sha(data)[:12]}… ≠ recorded {recorded[:12]}…)."
        )
        assert f"it was NOT {unread}. Restore the original file" in message


def test_read_verified_names_the_artefact_when_it_is_not_a_regular_file(tmp_path):
    (tmp_path / "elsewhere.pkl").write_bytes(b"x")
    (tmp_path / "model_v1.0.0.pkl").symlink_to(tmp_path / "elsewhere.pkl")
    with pytest.raises(pl.IntegrityError, match=r"^v1\.0\.0: artefact model_v1\.0\.0\.pkl is a symbolic link"):
        artefacts.read_verified(tmp_path, "model_v1.0.0.pkl", sha256=_sha(b"x"), size=1, version="1.0.0")


# --------------------------------------------------------------------------- a load that fails


def _double(x):
    return 2 * x


# Python 3.11 formats the AttributeError with the repr of xdist's __main__, a deprecated call.
@pytest.mark.filterwarnings("ignore:BuiltinImporter.module_repr:DeprecationWarning")
def test_a_model_needing_a_function_from_main_is_refused_with_the_remedy(tmp_path, monkeypatch):
    # The classic: a FunctionTransformer(func) with func defined in a notebook, loaded in another process.
    from sklearn.preprocessing import FunctionTransformer

    buffer = io.BytesIO()
    with defined_in_main(monkeypatch, _double):
        joblib.dump(FunctionTransformer(_double), buffer)
    with pytest.raises(errors.ArtefactLoadError) as caught:
        artefacts.loads(buffer.getvalue(), format="joblib", label="v1.0.0: model_v1.0.0.pkl")
    message = str(caught.value)
    assert message.startswith("v1.0.0: model_v1.0.0.pkl could not become a model again: AttributeError: ")
    assert "_double" in message and "defined in a notebook or script (__main__)" in message
    assert "Move such code into a module installed wherever the model loads" in message
    assert isinstance(caught.value.__cause__, AttributeError)


def test_bytes_the_unpickler_cannot_read_are_refused_naming_the_cause(forest_bytes):
    with pytest.raises(errors.ArtefactLoadError, match=r"^the artefact could not become a model again: ") as caught:
        artefacts.loads(forest_bytes[: len(forest_bytes) // 2], format="joblib")
    message = str(caught.value)
    assert "they matched their card's sha256, so the cause is this environment" in message
    assert "install the package versions recorded on the card" in message
    assert isinstance(caught.value.__cause__, ValueError) and "again: ValueError: EOF: reading array" in message
    scrambled = forest_bytes[:100] + bytes(b ^ 0xFF for b in forest_bytes[100:200]) + forest_bytes[200:]
    with pytest.raises(errors.ArtefactLoadError, match=r"again: zlib\.error: Error -3 while decompressing"):
        artefacts.loads(scrambled, format="joblib")  # a class from a module is named with its module


def test_a_model_needing_a_package_not_installed_says_to_install_it():
    data = b"cno_such_package_xyz\nForest\n."  # a pickle naming a class in a package that is not installed
    with pytest.raises(errors.ArtefactLoadError) as caught:
        artefacts.loads(data, format="joblib", label="v2.0.0: model_v2.0.0.pkl")
    message = str(caught.value)
    assert message.startswith("v2.0.0: model_v2.0.0.pkl could not become a model again: ModuleNotFoundError: ")
    assert "no_such_package_xyz" in message and "install the package versions recorded on the card" in message
    assert isinstance(caught.value.__cause__, ModuleNotFoundError)


def test_running_out_of_memory_says_so_not_install_packages(forest_bytes, monkeypatch):
    def out_of_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(joblib, "load", out_of_memory)
    with pytest.raises(errors.ArtefactLoadError) as caught:
        artefacts.loads(forest_bytes, format="joblib")
    assert str(caught.value) == (
        "the artefact could not become a model again: MemoryError. There is not enough memory here to rebuild "
        "it: free some, or load it on a larger machine."
    )


def test_a_joblib_file_older_than_0_10_is_refused_with_what_to_do():
    with pytest.raises(errors.ArtefactLoadError, match=r"^v1\.0\.0: m\.pkl was written by joblib older than 0\.10"):
        artefacts.loads(b"ZF0x00000000000000000000", format="joblib", label="v1.0.0: m.pkl")


def test_lz4_without_the_lz4_package_is_refused_on_save_and_on_load(monkeypatch, tmp_path):
    import joblib.compressor

    buffer = io.BytesIO()
    joblib.dump([1, 2, 3], buffer, compress=("lz4", 3))
    monkeypatch.setattr(joblib.compressor, "lz4", None)  # what joblib sees when lz4 is not installed
    with pytest.raises(errors.InvalidArgumentError, match=r"needs the lz4 package, which is not installed: pip"):
        artefacts.dump([1], tmp_path / "x.pkl", compress=("lz4", 3))
    assert not (tmp_path / "x.pkl").exists()
    with pytest.raises(errors.InvalidArgumentError, match="compress must be an int 0-9"):
        artefacts.check_compress(("lz4", 99))  # a bad level is a bad level, lz4 or not
    with pytest.raises(
        errors.ArtefactLoadError, match=r"^the artefact is compressed with lz4, and the lz4 package is not installed"
    ):
        artefacts.loads(buffer.getvalue(), format="joblib")


# --------------------------------------------------------------------------- loading politely (yielding_to)
# A server's swap loads with a pause between reads, to step aside for requests (see test_serving.py).


@pytest.fixture(scope="module")
def forest_bytes():
    X, y = pl.make_churn(300, random_state=0)
    buffer = io.BytesIO()
    joblib.dump(RandomForestClassifier(5, random_state=0).fit(X, y), buffer, compress=3)
    return buffer.getvalue()


def test_a_load_inside_yielding_to_pauses_between_reads_and_only_there(forest_bytes):
    outer, inner = [], []
    artefacts.loads(forest_bytes, format="joblib")  # no pause set: nothing is called
    with artefacts.yielding_to(lambda: outer.append(1)):
        model = artefacts.loads(forest_bytes, format="joblib")
        after_outer = len(outer)
        with artefacts.yielding_to(lambda: inner.append(1)):
            artefacts.loads(forest_bytes, format="joblib")
        assert len(outer) == after_outer, "the inner block's pause replaces the outer one"
        artefacts.loads(forest_bytes, format="joblib")  # the outer pause is back
    assert type(model).__name__ == "RandomForestClassifier"
    assert after_outer > 1 and len(inner) > 1, "a pause between reads, many times per load"
    assert len(outer) == 2 * after_outer
    done = len(outer)
    artefacts.loads(forest_bytes, format="joblib")
    assert len(outer) == done, "after the block, loads do not pause"


@pytest.mark.parametrize(
    ("compress", "protocol"),
    [(0, None), (0, 0), (("zlib", 3), 1), (("zlib", 3), 2)] + [((m, 3), None) for m in artefacts.JOBLIB_COMPRESSORS],
)
def test_the_pause_comes_between_the_unpicklers_reads_with_every_compressor(compress, protocol):
    # 40 arrays of zeros: 3.2 MB to unpickle from a few kB of compressed bytes. A pause only between reads of
    # the compressed bytes would come once or twice; the unpickler reads each array (and the frames between,
    # or with pickle protocols 0 and 1, lines).
    arrays = [np.zeros(10_000) + i for i in range(40)]
    buffer = io.BytesIO()
    joblib.dump(arrays, buffer, compress=compress, protocol=protocol)
    data = buffer.getvalue()
    assert len(data) < 200_000 or compress == 0
    pauses = []
    with artefacts.yielding_to(lambda: pauses.append(1)):
        loaded = artefacts.loads(data, format="joblib")
    assert len(loaded) == 40 and all(np.array_equal(a, b) for a, b in zip(loaded, arrays, strict=True))
    assert len(pauses) >= 80, f"{len(pauses)} pauses for 40 arrays"


def test_the_unpicklers_reader_pauses_before_every_read_and_line():
    pauses = []
    reader = artefacts._SharingReader(io.BytesIO(b"GLOBAL line\nrest"))
    with artefacts.yielding_to(lambda: pauses.append(reader._stream.tell())):
        assert reader.read(2) == b"GL"
        assert reader.seek(1) == 1 and pauses == [0], "seeking reads nothing: no pause"
        assert reader.readline(3) == b"LOB"
        assert reader.readline() == b"AL line\n"
        assert reader.read() == b"rest"
    assert pauses == [0, 1, 4, 12], "a pause before each read, where it starts"


def test_the_pause_is_per_thread(forest_bytes):
    calls, loaded = [], []
    other = threading.Thread(target=lambda: loaded.append(artefacts.loads(forest_bytes, format="joblib")))
    with artefacts.yielding_to(lambda: calls.append(threading.get_ident())):
        other.start()
        other.join()
    assert calls == [], "another thread's load does not call this thread's pause"
    assert [type(m).__name__ for m in loaded] == ["RandomForestClassifier"], "a thread that never set a pause loads"
