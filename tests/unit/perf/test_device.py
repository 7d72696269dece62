"""bench.perf on a chosen device: the CLI's --device, the synchronised timers and the figures naming the device
(no GPU needed: CUDA is faked where a test needs it; nothing here is timed)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from bench.engine.machine import cpu_model
from bench.perf import __main__ as perf
from bench.perf import timing
from bench.perf.device import CPU_ONLY, device_figures, section_device

CUDA1 = torch.device("cuda", 1)


@pytest.fixture
def synchronised(monkeypatch: pytest.MonkeyPatch) -> list:
    """The devices torch.cuda.synchronize is called with (the real one is never called)."""
    calls: list = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: calls.append(device))
    return calls


def test_the_timers_synchronise_a_cuda_device_and_not_the_cpu(synchronised: list) -> None:
    timing.synchronize("cpu")
    timing.synchronize(None)
    timing.now(torch.device("cpu"))
    assert synchronised == []
    timing.synchronize(CUDA1)
    assert synchronised == [CUDA1]
    assert timing.best_seconds(lambda: None, repeats=2, device="cuda:0") >= 0
    assert synchronised[1:] == ["cuda:0"] * 4  # before reading the clock at the start and end of each call


def test_timed_steps_move_each_batch_to_the_model_s_device_and_synchronise(monkeypatch, synchronised: list) -> None:
    from bench.perf import train_step

    moved: list = []

    class Batch:
        def to(self, device: torch.device) -> str:
            moved.append(device)
            return "on device"

    stepped: list = []
    monkeypatch.setattr(train_step, "training_step", lambda m, o, b: stepped.append(b) or {"total": torch.ones(())})
    model = SimpleNamespace(parameters=lambda: iter([SimpleNamespace(device=CUDA1)]))
    seconds, losses = train_step.timed_steps(model, None, [Batch(), Batch()])
    assert moved == [CUDA1, CUDA1] and stepped == ["on device", "on device"] and len(losses) == 2 and seconds >= 0
    assert synchronised == [CUDA1, CUDA1]  # the clock read at the start and at the end, after the device's work


def test_each_section_s_device(monkeypatch) -> None:
    assert section_device("train_step", None) == torch.device("cpu")  # today's default
    assert all(section_device(s, CUDA1) == torch.device("cpu") for s in CPU_ONLY)  # CPU code: CPU whatever is asked
    assert section_device("train_step", CUDA1) == section_device("sasrec", CUDA1) == CUDA1
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: f"Fake GPU {device}")
    assert device_figures("train_step", CUDA1) == {"train_step_device": "cuda:1",
                                                   "train_step_device_name": "Fake GPU cuda:1"}
    assert device_figures("itemcf", torch.device("cpu"))["itemcf_device_name"] == cpu_model()


def test_every_section_takes_device_cpu(monkeypatch, tmp_path) -> None:
    ran: list = []
    monkeypatch.setattr(perf, "run_sections",
                        lambda sections, which, out, devices, baseline, *rest: ran.append((devices, baseline)))
    for section in perf.SECTIONS:
        assert perf.main(["--full", "--only", section, "--device", "cpu", "--out", str(tmp_path / "f.json")]) == 0
        assert ran.pop() == ({section: torch.device("cpu")}, None)
    assert perf.main(["--only", "train_step", "--device", "cpu", "--baseline-device", "cpu"]) == 0
    assert ran.pop() == ({"train_step": torch.device("cpu")}, torch.device("cpu"))
    for bad in (["--device", "gpu"], ["--only", "itemcf", "--baseline-device", "cpu"]):
        with pytest.raises(SystemExit):
            perf.main(bad)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a torch build with a CUDA device")
def test_device_cuda_without_cuda_fails_in_one_line(monkeypatch, capsys) -> None:
    monkeypatch.setattr(perf, "run_sections", lambda *a: pytest.fail("ran without the device"))
    for args in (["--device", "cuda"], ["--only", "train_step", "--baseline-device", "cuda:0"]):
        assert perf.main(["--only", "itemcf", *args] if args[0] == "--device" else args) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: --") and "cuda" in err and len(err.strip().splitlines()) == 1, err
        assert "Traceback" not in err


def test_a_section_s_figures_and_record_name_its_device(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(perf, "run_section", lambda name, which, *rest: {"itemcf_fit_seconds": 1.0})
    out = tmp_path / "figures.json"
    assert perf.main(["--only", "itemcf", "--device", "cpu", "--out", str(out)]) == 0
    saved = json.loads(out.read_text())
    assert saved["figures"]["itemcf_device"] == "cpu" and saved["figures"]["itemcf_device_name"] == cpu_model()
    assert saved["sections"]["itemcf"]["device"] == "cpu"
