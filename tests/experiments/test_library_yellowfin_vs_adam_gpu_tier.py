"""Experiment 11's gpu tier (yellowfin-vs-adam) on the CPU with tiny sizes, through the same code
path: without the user's CIFAR directory and corpus the record is ``not applicable`` and names
``$MOMLAB_CIFAR_DIR`` / ``$MOMLAB_TEXT`` and the expected layout; with a tiny fake CIFAR-10
directory and a tiny corpus it trains a ResNet on CIFAR and a word-level LSTM."""

from __future__ import annotations

import dataclasses

import numpy as np

from experiments.library import _yellowfin_vs_adam_tasks as tasks
from experiments.library import yellowfin_vs_adam as yva
from tests.gpu._fake_cifar import write_fake_cifar


def _tiny(cfg: yva.YellowFinVsAdamConfig) -> yva.YellowFinVsAdamConfig:
    return dataclasses.replace(
        cfg,
        resnet_depth=8,
        resnet_width=2,
        resnet_batch=8,
        lstm_vocab=30,
        lstm_embed=4,
        lstm_hidden=8,
        lstm_batch=4,
        lstm_seq_len=6,
        steps=20,
        eval_every=10,
        eval_examples=8,
        eval_batch=4,
        stage_steps=20,
        seeds=2,
        max_extensions=0,
        smooth=10,
    )


def test_without_user_data_the_gpu_tier_is_not_applicable_and_names_the_paths(
    monkeypatch, tmp_path
) -> None:
    monkeypatch.delenv(tasks.CIFAR_ENV, raising=False)
    monkeypatch.delenv(tasks.TEXT_ENV, raising=False)
    cfg = yva.YellowFinVsAdamConfig.gpu()
    assert cfg.resnet_data == "cifar10" and cfg.resnet_depth == 20 and cfg.lstm_tokens == "word"
    rec = yva.run(_tiny(cfg), 0)  # nothing to train: returns at once
    assert rec.verdict == "not applicable"
    failed = {c.name: c.note for c in rec.checks if c.kind == "precondition" and not c.passed}
    assert "MOMLAB_CIFAR_DIR is not set" in failed["resnet_data_available"]
    assert "cifar-10-batches-py" in failed["resnet_data_available"]
    assert "MOMLAB_TEXT is not set" in failed["lstm_data_available"]
    assert "not run" in rec.summary
    # a directory that holds no CIFAR is named as such
    monkeypatch.setenv(tasks.CIFAR_ENV, str(tmp_path))
    note = tasks.missing_data("resnet", yva.YellowFinVsAdamConfig.gpu())
    assert f"MOMLAB_CIFAR_DIR={tmp_path} does not hold CIFAR-10" in note
    yva.plot(rec)  # renders the reasons instead of curves


def test_gpu_tier_trains_on_a_fake_cifar_directory_and_a_word_corpus(monkeypatch, tmp_path) -> None:
    write_fake_cifar(tmp_path / "cifar", 100, per_batch=40)
    corpus = tmp_path / "corpus.txt"
    words = np.random.default_rng(0).choice(["a", "b", "c", "d", "e", "f", "g"], size=3000)
    corpus.write_text(" ".join(words) + "\n", encoding="utf-8")
    monkeypatch.setenv(tasks.CIFAR_ENV, str(tmp_path / "cifar"))
    monkeypatch.setenv(tasks.TEXT_ENV, str(corpus))
    cfg = yva.YellowFinVsAdamConfig.gpu()
    assert cfg.resnet_data == "cifar100" and cfg.resnet_depth == 32  # only CIFAR-100 is there
    rec = yva.run(_tiny(cfg), 0)
    assert not any(c.name.endswith("data_available") for c in rec.checks)
    assert rec.measurement["resnet"]["data"]["name"] == "cifar100"
    lstm = rec.measurement["lstm"]
    assert lstm["data"]["level"] == "word" and lstm["perplexity_per"] == "word"
    assert lstm["data"]["vocab_size"] == 8  # <unk> and the 7 words (the one <eos> is held out)
    # 20 steps is a smoke run (or not applicable when a precondition fails); never an error
    assert rec.verdict in ("smoke", "not applicable")
    assert rec.arrays["lstm_heldout_loss_yellowfin"].shape == (2, 3)  # 30 YellowFin steps / 10
