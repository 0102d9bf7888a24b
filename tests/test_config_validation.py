"""Every CLI setting of every registered experiment is checked before the first cell (issue 16):
`ssldyn run NAME --set key=bad --out DIR` exits with status 2, prints one line naming the setting,
leaves no output directory behind and never reaches the cell loop."""

import dataclasses
import time

import pytest

from ssldyn.cli import main
from ssldyn.experiments import REGISTRY, make_config
from ssldyn.experiments import _runner

# per experiment: (setting=value, the field the message must name); generic checks (types, signs,
# counts >= 1, finite floats, non-empty tuples) and each experiment's `validate_config`
BAD = {
    "esser-mnist": [("k=0", "k"), ("lr=nan", "lr"), ("collapse_max_steps=10", "collapse_max_steps"),
                    ("widths=", "widths"), ("seed=-1", "seed")],
    "hssl": [("n_steps=0", "n_steps"), ("lr=inf", "lr"), ("seed=-1", "seed"), ("modes=", "modes"),
             ("temperature=0", "temperature")],
    "barlow-stepwise": [("lambda0=2", "lambda0"), ("k_kernel=1000", "k_kernel"), ("n_saves=0", "n_saves"),
                        ("horizon=-1", "horizon"), ("widths=1,2", "widths"), ("n_pairs=9000", "n_pairs")],
    "dimensional-collapse": [("n_noised=16", "n_noised"), ("batch_size=1", "batch_size"), ("n_saves=7", "n_saves"),
                             ("sigmas=1.5,1.5", "sigmas"), ("lr=-1e-3", "lr"), ("ode_rtol=0", "ode_rtol")],
    "directpred": [("parts=network", "parts"), ("n_grid=1", "n_grid"), ("iso_out=20", "iso_out"),
                   ("p_max=-5", "p_max"), ("net_lam=1.0,-0.5", "net_lam"), ("net_beta=100", "net_beta")],
    "simvae": [("n_steps=0", "n_steps"), ("lr=nan", "lr"), ("batch_size=0", "batch_size"), ("seed=-1", "seed"),
               ("hidden=", "hidden")],
    "wen-li-head": [("threshold=1.5", "threshold"), ("alpha2s=1.2", "alpha2s"), ("n_save=1", "n_save"),
                    ("sgd_lr=0", "sgd_lr"), ("w2_v2=0.1", "w2_v2"), ("s=20", "s")],
    "wen-li-sparse": [("p=0", "p"), ("conditions=bogus", "conditions"), ("n_saves=7", "n_saves"),
                      ("d1=2", "d1"), ("ramp_fraction=2", "ramp_fraction"), ("small_lr_factor=0.7", "small_lr_factor")],
}

CASES = [(name, setting, field) for name, rows in BAD.items() for setting, field in rows]


def test_every_registered_experiment_has_bad_values():
    assert set(BAD) == set(REGISTRY.names())


@pytest.fixture
def no_cells(monkeypatch):
    """The cell loop (`_runner._run`, which runs `prepare` and the cells) must never be reached."""

    def forbidden(*args, **kwargs):
        raise AssertionError("the run started although the configuration is invalid")

    monkeypatch.setattr(_runner, "_run", forbidden)


@pytest.mark.parametrize("name,setting,field", CASES, ids=[f"{n}:{s}" for n, s, _ in CASES])
def test_bad_setting_is_refused_before_the_first_cell(name, setting, field, tmp_path, capsys, no_cells):
    out = tmp_path / "out"
    t0 = time.perf_counter()
    rc = main(["run", name, "--set", setting, "--out", str(out), "--no-progress"])
    elapsed = time.perf_counter() - t0
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ssldyn: error: "), err
    needle = field if field.startswith("`") else f"`{field}`"
    assert needle in lines[0], lines[0]
    assert "Traceback" not in err
    assert not out.exists()
    assert elapsed < 10.0, elapsed


@pytest.mark.parametrize("name", sorted(BAD))
def test_defaults_and_quick_pass_both_checks(name):
    exp = REGISTRY[name]
    for quick in (False, True):
        config = make_config(exp, quick=quick)
        _runner.check_config(config)
        if exp.validate is not None:
            exp.validate(config)


def test_generic_check_follows_the_defaults():
    @dataclasses.dataclass(frozen=True)
    class Cfg:
        n_items: int = 3
        shift: int = 0
        lr: float = 0.1
        offset: float = -1.0
        flag: bool = True
        sizes: tuple = (1, 2)
        arms: tuple = ((2, 0.5),)
        name: str = "a"

    _runner.check_config(Cfg())
    _runner.check_config(Cfg(shift=0, offset=-3.0, sizes=(4,), arms=((1, 1), (3, 0.1))))
    bad = [
        (dict(n_items=0), ValueError, "`n_items` must be an int >= 1"),
        (dict(shift=-1), ValueError, "`shift` must be an int >= 0"),
        (dict(n_items=2.0), TypeError, "`n_items` must be an int"),
        (dict(n_items=True), TypeError, "`n_items` must be an int"),
        (dict(lr=0.0), ValueError, "`lr` must be positive"),
        (dict(offset=float("inf")), ValueError, "`offset` must be a finite number"),
        (dict(flag=1), TypeError, "`flag` must be true or false"),
        (dict(sizes=()), ValueError, "`sizes` must not be empty"),
        (dict(sizes=(1, 2.5)), TypeError, "`sizes`[1] must be an int"),
        (dict(sizes=(1, -2)), ValueError, "`sizes`[1] must be an int >= 0"),
        (dict(arms=((2,),)), ValueError, "`arms`[0] must have 2 entries"),
        (dict(arms=((2, float("nan")),)), ValueError, "`arms`[0][1] must be a finite number"),
        (dict(name=3), TypeError, "`name` must be a string"),
    ]
    for kw, exc, msg in bad:
        with pytest.raises(exc) as info:
            _runner.check_config(Cfg(**kw))
        assert msg in str(info.value), (kw, str(info.value))
