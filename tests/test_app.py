"""The demo as a server: app.build_demo on tiny models, launched on a free
port, driven through gradio_client as a visitor's script would."""
import concurrent.futures

import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

import aigc
import app
from aigc.preprocess import NOT_AN_IMAGE

from .tiny_demo import free_port, tiny_models, write_checkpoints_dir, write_examples_dir


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("app")
    models = tiny_models()
    demo = app.build_demo(models, checkpoints_dir=write_checkpoints_dir(root / "checkpoints", models),
                          examples_dir=write_examples_dir(root / "examples"), concurrency=2)
    _, url, _ = app.launch(demo, host="127.0.0.1", port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        yield url, root
    finally:
        demo.close()


@pytest.fixture(scope="module")
def client(served):
    return Client(served[0], verbose=False)


def test_every_action_is_a_named_endpoint(client):
    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/sample", "/interpolate", "/reconstruct", "/train_status"} <= set(api)
    params = api["/sample"]["parameters"]
    names = [p["parameter_name"] for p in params]
    assert names == ["family", "dataset", "class_name", "count", "seed", "temperature", "checkpoint", "steps",
                     "guidance"]
    assert all(p["parameter_has_default"] for p in params[6:])   # old scripts, six arguments, work
    assert params[6]["parameter_default"] == "bundled"
    # The page's labels are in two languages; a script reads them in English.
    assert [p["label"] for p in params[:5]] == ["Model", "Pictures of", "Class",
                                                "How many (per class with 'every class')", "Seed"]
    assert not {"/open_link", "/sample_link", "/interpolate_link", "/compare_link"} & set(api)   # the page's own


def test_sample_through_the_api_is_deterministic(client):
    a = client.predict("gan", "mnist", "7", 64, 3, 1.0, api_name="/sample")
    b = client.predict(family="gan", dataset="mnist", class_name="7", count=64, seed=3, temperature=1.0,
                       api_name="/sample")
    assert a.endswith(".png")
    pa, pb = np.asarray(Image.open(a)), np.asarray(Image.open(b))
    assert pa.shape[1] == 726 and pa.shape[0] > 726 and np.array_equal(pa, pb)   # an 8x8 grid, its class under it
    assert pa[726:].min() < 255


def test_fashion_class_by_name_through_the_api(client):
    # The class list on the page starts as digits; the API must still take fashion names.
    img = Image.open(client.predict("vae", "fashion", "Ankle boot", 1, 0, 0.5, api_name="/sample"))
    assert img.width == 224 and img.height > 224   # one picture, no grid padding, upscaled 8x; its class under it


def test_interpolate_through_the_api(client, served):
    strip, gif = client.predict("classes", "gan", "mnist", 1, 2, "3", "8", None, None, "linear", 32,
                                api_name="/interpolate")
    with Image.open(gif) as g:
        assert g.format == "GIF" and g.n_frames == 62 and g.size == (224, 224)
    ex = sorted((served[1] / "examples" / "mnist").glob("*.png"))
    strip, gif = client.predict("images", "vae", "mnist", 0, 0, "0", "0", handle_file(str(ex[0])),
                                handle_file(str(ex[1])), "spherical", 4, api_name="/interpolate")
    assert Image.open(strip).size[0] > Image.open(strip).size[1]


def test_reconstruct_through_the_api(client, served):
    ex = sorted((served[1] / "examples" / "fashion").glob("*.png"))[0]
    panels, error, verdict = client.predict("fashion", handle_file(str(ex)), api_name="/reconstruct")
    assert Image.open(panels).size == (688, 248) and Image.open(panels).mode == "RGB"
    assert 0 <= error <= 1 and verdict.split(":")[0] in {"Good", "Fair", "Poor"}


def test_train_status_through_the_api(client):
    losses, fractions, others, slider, grid, facts, metrics, live, runs = client.predict("vae-mnist",
                                                                                        api_name="/train_status")
    assert {row[2] for row in losses["data"]} == {"total (-ELBO)", "reconstruction", "KL"}
    assert {row[2] for row in fractions["data"]} == {"class_accuracy"}
    assert {row[2] for row in others["value"]["data"]} == {"frechet"}    # an update: on a log scale
    assert others["y"] == "log10" and "floor unknown" in others["caption"]
    assert slider["value"] == 3 and slider["maximum"] == 3
    assert Image.open(grid).size == (302, 302)
    assert "| epochs | 3 (30 steps) |" in facts and "| nll_iw_k | 5000 |" in metrics
    assert live == "" and runs is None


@pytest.mark.parametrize("args, api_name, message", [
    (("gan", "mnist", "3", 500, 0, 1.0), "/sample", "greater than maximum value 100"),
    (("gan", "mnist", "3", 8, -5, 1.0), "/sample", "less than minimum value 0"),
    (("gan", "mnist", "3", 8, 0, 9.0), "/sample", "greater than maximum value 2"),
    (("gan", "mnist", "Sneaker", 8, 0, 1.0), "/sample", "'Sneaker' is not a class of mnist"),
    (("seeds", "gan", "mnist", 1, 2, "3", "8", None, None, "spherical", 1000), "/interpolate",
     "greater than maximum value 60"),
    (("images", "vae", "mnist", 1, 2, "3", "8", None, None, "linear", 8), "/interpolate",
     "Please give the first picture"),
    (("mnist", None), "/reconstruct", "Please give the picture"),
    (("../../etc",), "/train_status", "No checkpoint called '../../etc'"),
    (("gan", "mnist", "3", "abc", 0, 1.0), "/sample", "How many .* must be a number from 1 to 100"),
    (("gan", "mnist", "3", 8, [1], 1.0), "/sample", "Seed must be a number from 0 to 4,294,967,295"),
    (("dcgan", "mnist", "3", 8, 0, 1.0), "/sample", "dcgan"),
])
def test_bad_input_gets_plain_words_and_the_server_keeps_serving(client, args, api_name, message):
    with pytest.raises(AppError, match=message) as e:
        client.predict(*args, api_name=api_name)
    assert "Traceback" not in str(e.value)
    assert client.predict("gan", "mnist", "1", 1, 0, 1.0, api_name="/sample").endswith(".png")


def test_bad_uploads_through_the_api(client, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_bytes(b"definitely not a picture")
    with pytest.raises(AppError) as e:
        client.predict("mnist", handle_file(str(bad)), api_name="/reconstruct")
    assert NOT_AN_IMAGE in str(e.value)
    huge = tmp_path / "huge.png"
    Image.new("1", (10_000, 10_000), 1).save(huge)
    with pytest.raises(AppError, match="10,000 x 10,000 pixels, too big"):
        client.predict("mnist", handle_file(str(huge)), api_name="/reconstruct")
    clear = tmp_path / "clear.png"
    Image.new("RGBA", (64, 64), (0, 0, 0, 0)).save(clear)
    with pytest.raises(AppError, match="fully transparent"):
        client.predict("mnist", handle_file(str(clear)), api_name="/reconstruct")
    sixteen = tmp_path / "sixteen.png"
    a = np.full((64, 64), 65535, np.uint16)
    a[10:50, 30:34] = 0
    Image.fromarray(a).save(sixteen)
    panels, *_ = client.predict("mnist", handle_file(str(sixteen)), api_name="/reconstruct")
    assert np.asarray(Image.open(panels))[:224, :224].max() == 255   # a 16-bit picture is read, not refused


def test_twenty_visitors_at_once_are_all_served(served):
    url = served[0]
    with concurrent.futures.ThreadPoolExecutor(20) as pool:     # one connection each, as 20 browsers
        clients = list(pool.map(lambda _: Client(url, verbose=False), range(20)))
    jobs = []
    for i, c in enumerate(clients):
        if i % 2:
            jobs.append(c.submit("gan", "fashion", "every class", 10, i, 1.0, api_name="/sample"))
        else:
            jobs.append(c.submit("seeds", "vae", "mnist", i, i + 1, "4", "4", None, None, "spherical", 32,
                                 api_name="/interpolate"))
    results = [j.result(timeout=120) for j in jobs]
    assert all(r.endswith(".png") for r in results[1::2])
    assert all(gif.endswith(".gif") for _, gif in results[0::2])


def test_main_refuses_missing_checkpoints_cleanly(tmp_path, capsys):
    assert app.main(["--checkpoint-dir", str(tmp_path), "--device", "cpu"]) == 2
    assert "could not load the models" in capsys.readouterr().err


def test_load_models_from_a_checkpoint_dir(tmp_path):
    for m in tiny_models():
        m.save_pretrained(tmp_path / f"{m.family}-{m.dataset}")
    models = app.load_models(device="cpu", checkpoint_dir=str(tmp_path))
    assert sorted((m.family, m.dataset) for m in models) == sorted(tuple(n.split("-")) for n in aigc.BUNDLED)
    assert {m.family for m in models} == {"gan", "vae", "flow"}
    assert all(m.source.startswith("local:") for m in models)
