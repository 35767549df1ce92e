"""Model names for --arch (scalesim.train.models): scalesim's ResNets, keras:<application>,
module:function; bad names are UsageErrors (exit code 2) that say what to use."""
import pytest

from scalesim.errors import UsageError
from scalesim.train.models import parse_arch


def test_parse_names_and_arguments():
    assert parse_arch("resnet20").kind == "builtin"
    a = parse_arch("keras:MobileNet,alpha=0.25,include_top=True,name=mine")
    assert (a.kind, a.target) == ("keras", "MobileNet")
    assert a.kwargs == {"alpha": 0.25, "include_top": True, "name": "mine"}
    f = parse_arch("my.pkg.models:make_net,depth=3")
    assert (f.kind, f.target, f.kwargs) == ("function", "my.pkg.models:make_net", {"depth": 3})


@pytest.mark.parametrize("bad, says", [
    ("vgg16", "keras:<keras.applications name>"),
    ("keras:", "bad keras.applications name"),
    ("keras:MobileNet,alpha", "use NAME,key=value"),
    ("resnet20,width=3", "takes no arguments"),
    ("", "unknown model"),
])
def test_bad_names_are_usage_errors(bad, says):
    with pytest.raises(UsageError, match=None) as e:
        parse_arch(bad)
    assert says in str(e.value) and e.value.exit_code == 2


def test_resolution_errors_name_the_fix():
    pytest.importorskip("keras")
    from scalesim.train.models import build, check_arch

    with pytest.raises(UsageError, match="keras.applications has no model 'NoSuchNet'; available: .*MobileNet"):
        check_arch("keras:NoSuchNet")
    with pytest.raises(UsageError, match="cannot import 'no_such_module_xyz'"):
        check_arch("no_such_module_xyz:make")
    with pytest.raises(UsageError, match="could not be built .* unexpected keyword argument 'bogus'"):
        build("keras:MobileNet,bogus=1", (32, 32, 3), 10)
    with pytest.raises(UsageError, match="could not be built"):      # MobileNet needs >= 32x32
        build("keras:MobileNet,alpha=0.25", (8, 8, 3), 10)


def test_keras_application_builds_with_logits_and_classes():
    pytest.importorskip("keras")
    from scalesim.train.models import build

    m = build("keras:MobileNet,alpha=0.25", (32, 32, 3), 7)
    assert m.output_shape == (None, 7)
    assert m.layers[-1].activation.__name__ == "linear"    # logits: classifier_activation=None
    assert 2e5 < m.count_params() < 2.5e5                  # alpha 0.25 MobileNet: 221k with 7 classes


@pytest.mark.parametrize("argv, says", [
    (["measure", "--arch", "keras:NoSuchNet", "--no-progress"], "keras.applications has no model 'NoSuchNet'"),
    (["measure", "--arch", "keras:MobileNet", "--input-shape", "32,32"], "--input-shape must be H,W,C"),
    (["train", "--arch", "no_such_module_xyz:make"], "cannot import 'no_such_module_xyz'"),
    (["train", "--arch", "vgg16"], "unknown model 'vgg16'"),
])
def test_cli_refuses_bad_arch_with_one_line_and_exit_2(argv, says, tmp_path):
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "scalesim.cli", *argv], capture_output=True, text=True,
                       timeout=120, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and says in lines[0] and "Traceback" not in r.stderr
    assert not (tmp_path / "data").exists()          # nothing launched, no run directory left behind
