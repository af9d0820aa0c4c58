"""The generated supervisord.conf, read back by supervisor's own parser, and the log prefixer."""

from __future__ import annotations

import shlex
from pathlib import Path

from supervisor.datatypes import RestartUnconditionally
from supervisor.options import ServerOptions

from stack.logprefix import Prefixer, parse_header
from stack.services import GUNICORN, SPEC_PORTS, Layout, services
from stack.supervisor import GROUP, supervisord_conf


def parsed(tmp_path: Path, layout: Layout):
    (tmp_path / "logs").mkdir()
    conf = tmp_path / "supervisord.conf"
    conf.write_text(supervisord_conf(services(layout), tmp_path))
    options = ServerOptions()
    options.realize(args=["-c", str(conf)])
    return {group.name: group for group in options.process_group_configs}


def test_every_service_is_a_supervised_program_with_its_exact_command_and_env(tmp_path):
    # Values supervisor would otherwise mangle: %-interpolation, commas, quotes in commands.
    layout = Layout(ports=SPEC_PORTS, cluster_token="to%ken,with=odd:chars",
                    admin_token="adm'in", data_dir=str(tmp_path / "da ta"))
    groups = parsed(tmp_path, layout)
    assert set(groups) == {GROUP, "logprefix"}
    programs = {p.name: p for p in groups[GROUP].process_configs}
    for svc in services(layout):
        program = programs[svc.name]
        assert shlex.split(program.command) == list(svc.argv)
        env = dict(program.environment or {})
        if svc.kind == GUNICORN:  # metrics in the run dir, never a leaked temp dir
            assert env.pop("PROMETHEUS_MULTIPROC_DIR") == str(tmp_path / "metrics" / svc.name)
        assert env == svc.env
        assert program.autorestart is RestartUnconditionally
        assert program.stopasgroup and program.killasgroup
        assert program.startsecs <= 1
        assert program.stdout_events_enabled and program.redirect_stderr


def test_prefixer_prefixes_whole_lines_and_keeps_partial_ones_per_program():
    prefixer = Prefixer(width=7, color=False)
    assert prefixer.feed("node1", "one\ntw") == ["node1   | one"]
    assert prefixer.feed("balancer", "x\n") == ["balancer | x"]
    assert prefixer.feed("node1", "o\n") == ["node1   | two"]
    colored = Prefixer(width=5, color=True).feed("node2", "hi\n")[0]
    assert colored.startswith("\x1b[") and colored.endswith("node2 |\x1b[0m hi")


def test_event_headers_parse_like_supervisor_sends_them():
    header = parse_header("ver:3.0 server:supervisor serial:21 pool:logprefix poolserial:10 "
                          "eventname:PROCESS_LOG_STDOUT len:54")
    assert header["eventname"] == "PROCESS_LOG_STDOUT" and header["len"] == "54"
