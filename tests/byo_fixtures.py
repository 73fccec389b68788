"""Tiny models and data sets made on the spot, saved the way users and the hub save them, so the
tests load them through the public names (hf:<dir>, timm:<arch>, imagefolder:<dir>, csv:<file>) and
the same code that loads from the hub. Nothing here touches the network."""

from __future__ import annotations

from pathlib import Path

import numpy as np

WORDS = {
    0: ("bad", "awful", "boring", "dull", "poor", "weak"),
    1: ("good", "great", "fine", "superb", "lovely", "strong"),
}
FILLER = ("the", "film", "was", "a", "plot", "and", "acting", "really", "very", "story")


def sentences(n: int, seed: int = 0) -> tuple[list[str], list[int], list[str]]:
    """Short reviews whose label a sentiment word decides, with a 'dialect' attribute."""
    rng = np.random.default_rng(seed)
    texts, labels, groups = [], [], []
    for _ in range(n):
        label = int(rng.integers(2))
        words = list(rng.choice(FILLER, size=int(rng.integers(4, 9))))
        words.insert(int(rng.integers(len(words) + 1)), str(rng.choice(WORDS[label])))
        text = " ".join(words).capitalize() + "."
        texts.append(text)
        labels.append(label)
        groups.append(str(rng.choice(["a", "b"])))
    return texts, labels, groups


def text_dataset(root: Path, n: int = 48) -> Path:
    """A ``datasets`` DatasetDict (train and test, ClassLabel labels) written with save_to_disk."""
    import datasets

    features = datasets.Features(
        {"sentence": datasets.Value("string"), "label": datasets.ClassLabel(names=["negative", "positive"]),
         "dialect": datasets.Value("string")}
    )  # fmt: skip
    splits = {}
    for split, seed in (("train", 1), ("test", 2)):
        texts, labels, groups = sentences(n, seed)
        splits[split] = datasets.Dataset.from_dict({"sentence": texts, "label": labels, "dialect": groups}, features)
    path = root / "reviews"
    datasets.DatasetDict(splits).save_to_disk(str(path))
    return path


def image_dataset(root: Path, n: int = 24, size: int = 16) -> Path:
    """A ``datasets`` image data set (PIL images, ClassLabel) written with save_to_disk."""
    import datasets
    from PIL import Image

    rng = np.random.default_rng(3)
    labels = [k % 3 for k in range(n)]
    images = [Image.fromarray((rng.random((size, size, 3)) * 80 + 60 * k).astype(np.uint8)) for k in labels]
    sites = [str(s) for s in rng.choice(["lab", "field"], n)]
    features = datasets.Features(
        {"img": datasets.Image(), "label": datasets.ClassLabel(names=["r", "g", "b"]), "site": datasets.Value("string")}
    )
    data = datasets.Dataset.from_dict({"img": images, "label": labels, "site": sites}, features)
    path = root / "shapes"
    datasets.DatasetDict({"test": data}).save_to_disk(str(path))
    return path


def image_folder(root: Path, classes: tuple[str, ...] = ("cat", "dog", "eel"), per_class: int = 6,
                 size: tuple[int, int] = (20, 24)) -> Path:  # fmt: skip
    from PIL import Image

    rng = np.random.default_rng(4)
    for split in ("train", "test"):
        for k, name in enumerate(classes):
            folder = root / "pictures" / split / name
            folder.mkdir(parents=True)
            for i in range(per_class):
                pixels = np.clip(rng.normal(60 + 70 * k, 30, (*size, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")
    return root / "pictures"


def table(root: Path, n: int = 300) -> Path:
    import pandas as pd

    rng = np.random.default_rng(5)
    age = rng.integers(18, 80, n)
    income = rng.normal(50, 12, n).round(1)
    city = rng.choice(["north", "south", "east"], n)
    sex = rng.choice(["F", "M"], n)
    score = 0.04 * (age - 45) + 0.1 * (income - 50) + (city == "north") + rng.normal(0, 1, n)
    frame = pd.DataFrame({"age": age, "income": income, "city": city, "sex": sex,
                          "approved": np.where(score > 0, "yes", "no")})  # fmt: skip
    path = root / "loans.csv"
    frame.to_csv(path, index=False)
    return path


def tiny_text_model(root: Path, train_on: Path | None = None) -> Path:
    """A 1-layer BERT with a word-level tokenizer, saved with save_pretrained (as the hub holds it)."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", ".", *FILLER, *WORDS[0], *WORDS[1]]
    words = Tokenizer(models.WordLevel({w: i for i, w in enumerate(vocab)}, unk_token="[UNK]"))
    words.normalizer = __import__("tokenizers").normalizers.Lowercase()
    words.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace()])
    words.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=words, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]"
    )
    config = BertConfig(
        vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        max_position_embeddings=64, num_labels=2, id2label={0: "negative", 1: "positive"},
        label2id={"negative": 0, "positive": 1},
    )  # fmt: skip
    torch.manual_seed(0)
    model = BertForSequenceClassification(config)
    texts, labels, _ = sentences(256, seed=7)
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    optimiser = torch.optim.Adam(model.parameters(), lr=0.003)
    model.train()
    for _ in range(40):  # a few steps: it learns the sentiment words, so its explanations mean something
        loss = model(**batch, labels=torch.tensor(labels)).loss
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.eval()
    path = root / "tiny-bert"
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


TABULAR_MODULE = """
import torch
from torch import nn


class TabularNet(nn.Module):
    \"\"\"A user's own tabular network: raw rows (NaN for missing values) to logits.\"\"\"

    def __init__(self, features: int = 4, classes: int = 2) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(features, 8), nn.ReLU(), nn.Linear(8, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(torch.nan_to_num(x))
"""


def tabular_module(root: Path) -> Path:
    """A module file defining ``user_tabular:TabularNet``; returns the folder to put on PYTHONPATH."""
    folder = root / "user_code"
    folder.mkdir(exist_ok=True)
    (folder / "user_tabular.py").write_text(TABULAR_MODULE)
    return folder


def tiny_image_model(root: Path, channels: int = 3, labels: tuple[str, ...] = ("r", "g", "b")) -> Path:
    """A 1-layer ViT with its image processor (16x16 input), saved with save_pretrained."""
    import torch
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    config = ViTConfig(
        image_size=16, patch_size=8, num_channels=channels, hidden_size=16, num_hidden_layers=1,
        num_attention_heads=2, intermediate_size=32, num_labels=len(labels),
        id2label=dict(enumerate(labels)), label2id={n: i for i, n in enumerate(labels)},
    )  # fmt: skip
    torch.manual_seed(0)
    path = root / "tiny-vit"
    ViTForImageClassification(config).save_pretrained(path)
    ViTImageProcessor(size={"height": 16, "width": 16}, image_mean=[0.5] * channels, image_std=[0.5] * channels,
                      resample=2).save_pretrained(path)  # fmt: skip
    return path
