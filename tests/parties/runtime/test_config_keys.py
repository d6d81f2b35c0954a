"""Keys and configuration: every problem is an error at start-up, secrets never shown."""
from __future__ import annotations

import os
import stat

import pytest

from parties.commands.cli import main
from parties.runtime.config import load_config
from parties.runtime.errors import ConfigError, KeyFileError
from parties.runtime.keys import load_keypair, load_public_key, write_keypair


@pytest.fixture
def keys(tmp_path):
    for name in ("bank", "insurer"):
        write_keypair(tmp_path / "keys", name)
    return tmp_path / "keys"


def write_config(tmp_path, body: str, name="bank.toml"):
    path = tmp_path / name
    path.write_text(body)
    return path


def base_config(keys, **over) -> str:
    insurer = load_public_key(keys / "insurer.key").decode()
    parts = {"name": '"bank"', "listen": '"tcp://127.0.0.1:7001"', "secret_key": '"keys/bank.key_secret"'}
    parts.update(over)
    top = "\n".join(f"{k} = {v}" for k, v in parts.items() if v is not None)
    return (top + f'\n[data]\ncustomers = "data/c.csv"\n[limits]\nmax_epochs = 5\n'
            f'[[peers]]\nname = "insurer"\naddress = "tcp://127.0.0.1:7002"\npublic_key = "{insurer}"\n')


def test_keygen_cli_writes_private_secret_file(tmp_path, capsys):
    assert main(["keygen", "--name", "bank", "--out", str(tmp_path)]) == 0
    secret = tmp_path / "bank.key_secret"
    assert stat.S_IMODE(os.stat(secret).st_mode) == 0o600
    pair = load_keypair(secret)
    out = capsys.readouterr().out
    assert pair.public.decode() in out and pair.secret.decode() not in out
    assert pair.secret.decode() not in repr(pair) and "hidden" in repr(pair)
    assert main(["keygen", "--name", "bank", "--out", str(tmp_path)]) == 1        # no silent overwrite


def test_keys_stay_private_under_a_permissive_umask_and_force_never_follows_a_link(tmp_path):
    old = os.umask(0)
    try:
        assert main(["keygen", "--name", "bank", "--out", str(tmp_path / "keys")]) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "keys").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(tmp_path / "keys" / "bank.key_secret").st_mode) == 0o600
    victim = tmp_path / "victim.txt"
    victim.write_text("not a key")
    secret = tmp_path / "keys" / "bank.key_secret"
    secret.unlink()
    secret.symlink_to(victim)                         # someone planted a link where the secret goes
    assert main(["keygen", "--name", "bank", "--out", str(tmp_path / "keys"), "--force"]) == 0
    assert victim.read_text() == "not a key" and not secret.is_symlink()
    load_keypair(secret)


def test_party_files_are_private_and_written_whole(tmp_path):
    import json

    from vfl.files import write_private
    from vfl.model_files import write_model_file
    old = os.umask(0)
    try:
        write_model_file(tmp_path / "m" / "part.json", {"format": "x"})
        write_private(tmp_path / "split.json", json.dumps({"train_ids": [1]}))
    finally:
        os.umask(old)
    for f in (tmp_path / "m" / "part.json", tmp_path / "split.json"):
        assert stat.S_IMODE(os.stat(f).st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["m", "part.json", "split.json"]    # no leftovers


def test_a_private_key_is_not_picklable(small_keypair):
    import pickle
    with pytest.raises(TypeError, match="not serializable"):
        pickle.dumps(small_keypair[1])
    assert pickle.loads(pickle.dumps(small_keypair[0])) == small_keypair[0]


def test_valid_config(tmp_path, keys):
    config = load_config(write_config(tmp_path, base_config(keys)))
    assert config.peer("insurer").address == "tcp://127.0.0.1:7002"
    assert config.data == {"customers": str(tmp_path / "data" / "c.csv")}
    assert config.limits.max_epochs == 5 and config.accept_jobs_from == ("insurer",)
    assert config.load_keypair().secret.decode() not in repr(config)
    assert config.schemes == ("paillier", "ou")
    assert load_config(write_config(tmp_path, base_config(keys, crypto='{ schemes = ["paillier"] }'))).schemes \
        == ("paillier",)


@pytest.mark.parametrize("over, match", [
    ({"secret_key": '"keys/missing.key_secret"'}, "does not exist"),
    ({"secret_key": '"keys/insurer.key"'}, "no secret key"),
    ({"secret_key": None}, "no secret_key"),
    ({"name": '"bad name!"'}, "name must be"),
    ({"listen": '"udp://x"'}, "tcp://host:port"),
    ({"colour": '"blue"'}, "unknown config keys"),
    ({"name": '"insurer"'}, "unique"),
    ({"accept_jobs_from": '["shop"]'}, "unknown peers"),
    ({"crypto": '{ schemes = ["rsa"] }'}, "schemes must be a non-empty list"),
    ({"crypto": '{ schemes = [] }'}, "schemes must be a non-empty list"),
    ({"crypto": '{ scheme = "ou" }'}, "the key schemes only"),
])
def test_invalid_configs(tmp_path, keys, over, match):
    with pytest.raises(ConfigError, match=match):
        load_config(write_config(tmp_path, base_config(keys, **over)))


def test_malformed_and_unreadable_key_files(tmp_path, keys):
    bad = keys / "bank.key_secret"
    bad.write_text("curve\n    public-key = \"short\"\n    secret-key = \"short\"\n")
    with pytest.raises(KeyFileError, match="40-character"):
        load_keypair(bad)
    with pytest.raises(KeyFileError, match="does not exist"):
        load_keypair(tmp_path / "nope")
    if os.geteuid() != 0:
        os.chmod(bad, 0)
        with pytest.raises(KeyFileError, match="not readable"):
            load_keypair(bad)


def test_mismatched_keypair_is_refused(tmp_path, keys):
    other = load_public_key(keys / "insurer.key").decode()
    text = (keys / "bank.key_secret").read_text()
    own = load_public_key(keys / "bank.key").decode()
    (keys / "bank.key_secret").write_text(text.replace(own, other))
    with pytest.raises(KeyFileError, match="does not belong"):
        load_keypair(keys / "bank.key_secret")


def test_bad_limits_and_peer_keys(tmp_path, keys):
    text = base_config(keys).replace("max_epochs = 5", "max_epochs = -1")
    with pytest.raises(ConfigError, match="positive"):
        load_config(write_config(tmp_path, text))
    text = base_config(keys).replace("max_epochs = 5", "heartbeat_interval = 5.0")
    with pytest.raises(ConfigError, match="peer_dead_after"):
        load_config(write_config(tmp_path, text))
    text = base_config(keys).replace('public_key = "', 'public_key = "x')
    with pytest.raises(KeyFileError, match="public_key of peer insurer"):
        load_config(write_config(tmp_path, text))


def test_insecure_mode_needs_no_keys(tmp_path):
    path = write_config(tmp_path, 'name = "a"\nlisten = "tcp://127.0.0.1:1"\n'
                                  '[[peers]]\nname = "b"\naddress = "tcp://127.0.0.1:2"\n')
    with pytest.raises(ConfigError, match="no public_key"):
        load_config(path)
    assert load_config(path, insecure=True).peer("b").public_key is None


def test_serve_refuses_to_start_without_its_key(tmp_path, keys, monkeypatch):
    monkeypatch.setattr("parties.commands.serve.setup_logging", lambda **kw: None)   # keep pytest's handlers
    path = write_config(tmp_path, base_config(keys, secret_key='"keys/gone.key_secret"'))
    assert main(["serve", "--config", str(path)]) == 2
