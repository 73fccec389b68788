"""Bring-your-own data: ImageFolder, CSV, Hugging Face datasets, the named benchmarks, text encoding."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from byo_fixtures import image_dataset, image_folder, sentences, table, text_dataset
from helpers import everything
from PIL import Image

from harness.registry import RegistryError
from harness.tasks import DataNotFoundError, TaskError, check_task, get_task
from harness.tasks.text import decode_texts, encode_texts


def test_text_encoding_round_trips_unicode_and_pads_with_zeros():
    texts = ["héllo wörld", "", "数据 ✓", "a\x00b"]
    rows = encode_texts(texts)
    assert rows.dtype == torch.uint8 and rows.shape == (4, len("héllo wörld".encode()))
    assert decode_texts(rows) == ["héllo wörld", "", "数据 ✓", "ab"]
    assert decode_texts(rows[[2, 0]]) == ["数据 ✓", "héllo wörld"]


def test_imagefolder_reads_classes_splits_and_pixels(tmp_path):
    root = image_folder(tmp_path)
    task = get_task(f"imagefolder:{root}")
    assert task.classes == ("cat", "dog", "eel") and task.splits == ("train", "test") and task.eval_split == "test"
    assert task.input_shape == (3, 20, 24) and task.modality == "image"
    split = task.load()
    assert everything(split).shape == (18, 3, 20, 24) and split.labels.tolist() == [0] * 6 + [1] * 6 + [2] * 6
    first = np.asarray(Image.open(root / "test" / "cat" / "0.png"), dtype=np.float32).transpose(2, 0, 1) / 255
    assert torch.allclose(everything(split)[0], torch.from_numpy(first))
    assert split.attributes["file"][0] == "cat/0.png"
    resized = get_task(f"imagefolder:{root}", size=16, channels=1)
    assert resized.input_shape == (1, 16, 16) and everything(resized.load()).shape == (18, 1, 16, 16)
    grey = np.asarray(Image.open(root / "test" / "cat" / "0.png").convert("L").resize((16, 16), Image.BILINEAR))
    assert np.allclose(everything(resized.load())[0, 0].numpy(), grey / 255)
    cropped = everything(get_task(f"imagefolder:{root}", size=16, resize=18).load())
    assert cropped.shape == (18, 3, 16, 16)


def test_imagefolder_bad_input_names_the_folder_and_what_was_expected(tmp_path):
    with pytest.raises(TaskError, match="not a folder"):
        get_task(f"imagefolder:{tmp_path / 'missing'}")
    (tmp_path / "flat").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "flat" / "a.png")
    with pytest.raises(TaskError, match="is not an ImageFolder: expected one sub-folder of images per class"):
        get_task(f"imagefolder:{tmp_path / 'flat'}")
    for k, size in enumerate([(8, 8), (9, 7)]):
        (tmp_path / "mixed" / f"c{k}").mkdir(parents=True)
        Image.new("RGB", size).save(tmp_path / "mixed" / f"c{k}" / "x.png")
    with pytest.raises(TaskError, match=r"2 different sizes .* size=H"):
        get_task(f"imagefolder:{tmp_path / 'mixed'}")
    assert everything(get_task(f"imagefolder:{tmp_path / 'mixed'}", size=[6, 5]).load()).shape == (2, 3, 6, 5)
    with pytest.raises(TaskError, match="unknown option 'colour'"):
        get_task(f"imagefolder:{tmp_path / 'mixed'}", colour=1)
    with pytest.raises(RegistryError, match="needs its <dir>: imagefolder:<dir>"):
        check_task("imagefolder")


def test_csv_task_encodes_the_declared_columns(tmp_path):
    path = table(tmp_path)
    task = get_task(f"csv:{path}", label="approved", sensitive=["sex"], test_fraction=0.3)
    assert task.classes == ("no", "yes") and task.sensitive == ("sex",) and task.splits == ("train", "test")
    assert task.schema.numeric == ("age", "income") and set(task.schema.categorical) == {"city", "sex"}
    test, train = task.load(), task.load("train")
    assert len(test) == 90 and len(train) == 210
    frame = pd.read_csv(path)
    rows = frame.iloc[np.sort(np.random.default_rng(0).permutation(300)[210:])].reset_index(drop=True)
    assert np.allclose(test.inputs[:, 0].numpy(), rows["age"]) and np.allclose(
        test.inputs[:, 1].numpy(), rows["income"]
    )
    cities = task.schema.categorical["city"]
    assert [cities[int(c)] for c in test.inputs[:, 2]] == rows["city"].tolist()
    assert test.labels.tolist() == (rows["approved"] == "yes").astype(int).tolist()
    assert test.attributes["sex"].tolist() == rows["sex"].tolist()
    # the same options from a YAML file; explicit options win
    (tmp_path / "loans.yaml").write_text("label: approved\nsensitive: [sex, city]\nfeatures: [age, income]\n")
    from_yaml = get_task(f"csv:{path}", config=str(tmp_path / "loans.yaml"), sensitive=["sex"])
    assert from_yaml.schema.columns == ("age", "income") and from_yaml.sensitive == ("sex",)


def test_csv_bad_input(tmp_path):
    path = table(tmp_path)
    with pytest.raises(TaskError, match=r"label column \['outcome'\] not in .*columns: \['age', 'income'"):
        get_task(f"csv:{path}", label="outcome")
    with pytest.raises(TaskError, match="does not exist"):
        get_task(f"csv:{tmp_path / 'none.csv'}", label="y")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(TaskError, match="not a readable CSV"):
        get_task(f"csv:{tmp_path / 'empty.csv'}", label="y")
    with pytest.raises(TaskError, match="label: Field required"):
        get_task(f"csv:{path}")
    no_train = get_task(f"csv:{path}", label="approved")
    with pytest.raises(TaskError, match="needs training rows; give the task option train=FILE"):
        no_train.load("train")
    with pytest.raises(TaskError, match="holds text; list it under categorical"):
        get_task(f"csv:{path}", label="approved", categorical=[])


def test_hf_text_dataset_from_disk(tmp_path):
    path = text_dataset(tmp_path)
    task = get_task(f"hf:{path}", attributes=["dialect"])
    assert task.modality == "text" and task.classes == ("negative", "positive") and task.sensitive == ("dialect",)
    split = task.load()
    texts, labels, groups = sentences(48, seed=2)
    assert decode_texts(everything(split)) == texts and split.labels.tolist() == labels
    assert split.attributes["dialect"].tolist() == groups
    assert get_task(f"hf:{path}", split="train").load().labels.tolist() == sentences(48, seed=1)[1]
    with pytest.raises(TaskError, match=r"no split 'validation'; its splits are \['train', 'test'\]"):
        get_task(f"hf:{path}", split="validation")
    with pytest.raises(TaskError, match="text_column 'review' is not a column"):
        get_task(f"hf:{path}", text_column="review")


def test_hf_image_dataset_and_data_files(tmp_path):
    import datasets

    from harness.tasks.hf import HFTask
    from harness.tasks.images import to_array

    path = image_dataset(tmp_path)
    task = get_task(f"hf:{path}")
    assert task.modality == "image" and task.input_shape == (3, 16, 16) and task.classes == ("r", "g", "b")
    split = task.load()
    assert split.streamed  # decoded when read, from the data set's Arrow files
    stored = datasets.load_from_disk(str(path))["test"]
    expected = np.stack([to_array(image, 3, (16, 16), None) for image in stored["img"]]) / 255
    assert np.array_equal(everything(split).numpy(), expected.astype(np.float32))
    # fingerprinted by datasets' own fingerprint: the same for the same data, new for changed data
    assert HFTask(str(path)).load().fingerprint == split.fingerprint
    assert HFTask(str(path), resize=20, size=16).load().fingerprint != split.fingerprint
    black = Image.new("RGB", (16, 16))  # one image changed, the labels kept
    changed = stored.map(lambda row, k: {"img": black if k == 0 else row["img"]}, with_indices=True)
    datasets.DatasetDict({"test": changed}).save_to_disk(str(tmp_path / "changed"))
    shutil.rmtree(path)
    shutil.move(tmp_path / "changed", path)  # the same name, other data
    assert HFTask(str(path)).load().fingerprint != split.fingerprint
    # a folder of plain data files goes through datasets.load_dataset, as a hub data set does
    texts, labels, _ = sentences(20)
    (tmp_path / "files").mkdir()
    pd.DataFrame({"text": texts, "label": labels}).to_csv(tmp_path / "files" / "test.csv", index=False)
    files = get_task(f"hf:{tmp_path / 'files'}")
    assert files.modality == "text" and files.classes == ("0", "1") and decode_texts(everything(files.load())) == texts


def test_hub_names_while_offline_say_how_to_get_the_data(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(DataNotFoundError, match="HF_DATASETS_OFFLINE=1 is set"):
        get_task("hf:nobody/no-such-dataset-xyz")
    with pytest.raises(DataNotFoundError, match=r"sst2 loads stanfordnlp/sst2 .* save_to_disk"):
        get_task("sst2")


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def test_named_benchmarks_load_from_disk_or_say_how_to_get_them(tmp_path):
    with pytest.raises(DataNotFoundError, match=r"download=true"):
        get_task("cifar10", root=str(tmp_path)).load()
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (12, 28, 28)), rng.integers(0, 10, 12)
    for prefix in ("t10k", "train"):  # torchvision checks that all four files are there
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    split = get_task("mnist", root=str(tmp_path)).load()
    assert everything(split).shape == (12, 1, 28, 28) and split.labels.tolist() == labels.tolist()
    assert torch.allclose(everything(split)[3, 0], torch.from_numpy(images[3] / 255).float())
    with pytest.raises(DataNotFoundError, match=r"image-net.org"):
        get_task("imagenet-val", root=str(tmp_path / "none"))
    folder = image_folder(tmp_path, classes=("n01440764", "n01443537"), per_class=2, size=(300, 260))
    imagenet = get_task("imagenet-val", root=str(folder / "test"))
    assert imagenet.name == "imagenet-val" and imagenet.input_shape == (3, 224, 224)
    assert everything(imagenet.load()).shape == (4, 3, 224, 224)


def test_csv_rows_without_a_label_are_refused_unless_dropped_on_request(tmp_path):
    path = table(tmp_path)
    frame = pd.read_csv(path)
    frame.loc[[1, 7, 40], "approved"] = np.nan
    frame.to_csv(path, index=False)
    with pytest.raises(TaskError, match=r"3 of 300 rows .* no label in column 'approved' \(lines 3, 9, 42\).*"
                       r"drop_missing_labels=true to evaluate the other 297"):  # fmt: skip
        get_task(f"csv:{path}", label="approved")
    task = get_task(f"csv:{path}", label="approved", drop_missing_labels=True)
    split = task.load()
    assert len(split) == 297 and split.excluded == {"missing_labels": 3}
    # the count enters the split's fingerprint: the same 297 rows given without the three differ from it
    frame.dropna(subset=["approved"]).to_csv(tmp_path / "clean.csv", index=False)
    assert get_task(f"csv:{tmp_path / 'clean.csv'}", label="approved").fingerprint != task.fingerprint


def test_csv_text_in_a_numeric_column_is_refused_unless_declared_categorical(tmp_path):
    path = table(tmp_path)
    frame = pd.read_csv(path).astype({"income": object})
    frame.loc[[0, 5], "income"] = "?"
    frame.loc[9, "income"] = "n/a "  # pandas reads "n/a" as missing, but not with a trailing space
    frame.to_csv(path, index=False)
    with pytest.raises(TaskError, match=r"column 'income' .* holds numbers and 3 values that are not: '\?', "
                       r"'n/a ' \(lines 2, 7, 11\).*categorical"):  # fmt: skip
        get_task(f"csv:{path}", label="approved")
    task = get_task(f"csv:{path}", label="approved", categorical=["city", "sex", "income"])
    assert "income" in task.schema.categorical and len(task.load()) == 300


def test_csv_too_wide_or_too_large_is_refused_before_it_is_parsed(tmp_path):
    wide = tmp_path / "wide.csv"
    wide.write_text(",".join(f"c{i}" for i in range(20_001)) + "\n" + ",".join("1" * 20_001) + "\n")
    with pytest.raises(TaskError, match=r"20,001 columns in its header, over the 10,000 .* separator"):
        get_task(f"csv:{wide}", label="c0")
    path = table(tmp_path)
    with pytest.raises(TaskError, match=r"about 300 rows of 5 columns \(1,500 cells\), over the 1,000 .* max_cells"):
        get_task(f"csv:{path}", label="approved", max_cells=1000)
    assert len(get_task(f"csv:{path}", label="approved", max_cells=1500).load()) == 300


def test_imagefolder_unreadable_files_are_refused_unless_skipped_and_then_named(tmp_path):
    root = image_folder(tmp_path)
    (root / "test" / "dog" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    (root / "test" / "eel" / "empty.png").write_bytes(b"")
    with pytest.raises(TaskError, match=r"2 of 20 files in split test cannot be read as images: .*corrupt\.jpg is "
                       r"not an image that PIL can read.*skip_unreadable=true"):  # fmt: skip
        get_task(f"imagefolder:{root}").load()
    task = get_task(f"imagefolder:{root}", skip_unreadable=True)
    split = task.load()
    assert len(split) == 18 and split.excluded == {"unreadable_files": ["dog/corrupt.jpg", "eel/empty.png"]}
    assert list(split.attributes["file"]).count("dog/corrupt.jpg") == 0
    assert everything(split).shape == (18, 3, 20, 24)
