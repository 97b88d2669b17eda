"""Knowledge base, retriever training, the retrieval prompt path, and the knowledge CLI."""
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from rf_jax import memory, retriever as retr
from rf_jax.experiments import knowledge
from rf_jax.metrics import MetricWriter
from rf_jax.sharding import DEFAULT_RULES
from rf_jax.tasks import facts
from rf_jax.vocab import phase1_vocab
from tests.helpers import ROOT, load_config, mesh_of


def test_knowledge_base_is_deterministic_and_reseedable():
  a, b, fresh = facts.generate(1, 50), facts.generate(1, 50), facts.generate(2, 50)
  assert a.names == b.names and np.array_equal(a.objects, b.objects)
  assert len(set(a.names)) == 50 and all(len(n) == 3 and n.islower() for n in a.names)
  assert len(set(a.names) & set(fresh.names)) < 10  # new entities
  assert (a.objects != np.arange(50)[:, None]).all()  # no fact points back to its subject
  assert a.facts()[a.fact_row(4, 2)] == a.fact(4, 2) == a.names[4] + "C" + a.names[a.objects[4, 2]]
  with pytest.raises(ValueError, match="raise name_len"):
    facts.generate(0, 400, name_len=2)


def test_hops_chain_through_the_answer_of_the_previous_hop():
  kb = facts.generate(3, 30)
  e, rels = 5, [1, 3, 0]
  hops = kb.hops(e, rels)
  assert [h[0] for h in hops][0] == kb.question(e, rels)
  for (query, wrote, row), nxt in zip(hops, hops[1:] + [None]):
    subject, rel_list = kb.parse(query)
    fact = kb.facts()[row]
    assert fact.startswith(kb.names[subject] + "ABCD"[rel_list[0]])  # the supporting fact
    assert wrote.startswith(fact[-3:])  # the reasoner writes the fact's object
    if nxt is not None:
      assert nxt[0] == wrote  # hop 2's query is hop 1's output: findable only after hop 1
  assert hops[-1][1] == kb.answer(e, rels) and not knowledge.is_query(hops[-1][1], 3)
  assert knowledge.is_query(hops[0][1], 3)
  assert kb.parse("zzzzA") is None and kb.parse(kb.names[0] + "E") is None


def retriever_setup(steps):
  config = load_config("knowledge", "tiny")
  config.retriever.update(steps=steps, batch_entities=16, d_model=48, n_layers=2, mlp_dim=128,
                          learning_rate=3e-3, warmup_steps=10)
  config.train.log_every = 1000
  vocab = phase1_vocab()
  mesh = mesh_of((1, 1, 1))
  return config, vocab, mesh


@pytest.mark.slow
def test_contrastive_retriever_learns_to_find_the_supporting_fact(tmp_path):
  config, vocab, mesh = retriever_setup(steps=150)
  writer = MetricWriter(str(tmp_path), enabled=False)
  cfg = knowledge.retriever_config(config, -(-vocab.size // 8) * 8)
  graphdef, params = knowledge.train_retriever(config, cfg, vocab, mesh, writer)
  reader = knowledge.Reader(vocab, graphdef, params, top_k=4, query_len=7)
  kb = facts.generate(777, 100)  # a bank never seen in training
  knowledge.build_bank(kb, reader, str(tmp_path / "bank"))
  bank = memory.load(str(tmp_path / "bank"), mesh_of((8, 1, 1)), dim=cfg.dim)
  config.kb.eval_questions = 128
  rec = knowledge.recall(reader, kb, bank, config)
  # 400 facts: chance recall@1 is 0.0025
  assert rec["recall@1"] > 0.5 and rec["recall@4"] >= rec["recall@1"], rec
  # an untrained encoder does not find them
  _, fresh = retr.init(cfg, 5, mesh, DEFAULT_RULES)
  cold = knowledge.Reader(vocab, graphdef, fresh, top_k=4, query_len=7)
  knowledge.build_bank(kb, cold, str(tmp_path / "cold"))
  cold_bank = memory.load(str(tmp_path / "cold"), mesh_of((8, 1, 1)))
  assert knowledge.recall(cold, kb, cold_bank, config)["recall@1"] < 0.2


def test_retrieved_facts_are_placed_before_the_question(tmp_path):
  config, vocab, mesh = retriever_setup(steps=0)
  kb = facts.generate(9, 20)
  texts = kb.facts()
  chunks, _ = retr.pad_texts([vocab.encode(t) for t in texts], vocab.pad_id)
  # keys that make row r the best match of a query vector e_r: a known retrieval
  keys = np.eye(len(texts), dtype=np.float32)
  bank = memory.from_arrays(keys, chunks, mesh_of((8, 1, 1)))
  graphdef, params = retr.init(retr.RetrieverConfig(vocab_size=vocab.size, dim=80), 0, mesh,
                               DEFAULT_RULES)
  reader = knowledge.Reader(vocab, graphdef, params, top_k=2, query_len=7)
  rows = reader.retrieve(bank, [kb.question(3, [1])])
  prompt = reader.prompts(bank, [kb.question(3, [1])])[0]
  expected = ("<bos>" + texts[rows[0][0]] + ";" + texts[rows[0][1]] + "<sep>" +
              kb.question(3, [1]) + "<ans>")
  assert "".join(vocab.tokens[i] for i in prompt) == expected
  empty = reader.prompts(None, [kb.question(3, [1])])[0]
  assert "".join(vocab.tokens[i] for i in empty) == "<bos><sep>" + kb.question(3, [1]) + "<ans>"


def run_cli(workdir, *extra):
  return subprocess.run(
      [sys.executable, "-m", "rf_jax.knowledge", "--config=configs/knowledge.py:tiny",
       f"--workdir={workdir}", *extra], cwd=ROOT, capture_output=True, text=True, timeout=600,
      env={**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"})


@pytest.mark.slow
def test_knowledge_cli_writes_banks_checkpoints_and_report_and_resumes(tmp_path):
  out = run_cli(tmp_path / "kn")
  assert out.returncode == 0, out.stderr[-3000:]
  assert "retriever step" in out.stdout
  assert out.stdout.count("objective knowledge_hops") == 2  # both models: the library's trainer
  report = json.loads((tmp_path / "kn" / "report.json").read_text())
  assert set(report["table"]) == {"reasoner + retrieval", "reasoner, no retrieval",
                                  "full-context, facts in weights"}
  assert set(report["table"]["reasoner + retrieval"]) == {
      f"{b}/{h}" for b in ("train_0", "fresh") for h in (1, 2, 3)}
  for name, entities in (("train_0", 24), ("train_1", 24), ("fresh", 24), ("fresh_large", 48)):
    manifest = json.loads((tmp_path / "kn" / "banks" / name / "manifest.json").read_text())
    assert manifest["count"] == entities * 4 and manifest["dim"] == 16
  assert set(report["fresh_large"]) == {"1", "2", "3"}
  for stage in ("retriever", "reasoner", "full_context"):
    assert (tmp_path / "kn" / stage / "meta.json").exists()
    assert (tmp_path / "kn" / stage / "checkpoints").is_dir()  # the trainer's Checkpointer
  meta = json.loads((tmp_path / "kn" / "reasoner" / "meta.json").read_text())
  assert meta["model"]["attention_window"] == 64 and meta["memory"]["top_k"] == 4
  for stage, steps in (("reasoner", 30), ("full_context", 20)):
    final = json.loads((tmp_path / "kn" / stage / "final_metrics.json").read_text())
    assert final["step"] == steps and "train/loss" in final
  # a second run trains nothing and reproduces the table from the saved stages
  again = run_cli(tmp_path / "kn")
  assert again.returncode == 0, again.stderr[-3000:]
  assert "step" not in again.stdout.replace("wall", "")
  assert json.loads((tmp_path / "kn" / "report.json").read_text())["table"] == report["table"]
  # a bank from text files, chunked and keyed by the trained retriever
  doc = "The capital of Qzv is Moa. Moa lies on the river Xfe, which runs south." * 2
  (tmp_path / "doc.txt").write_text(doc)
  built = run_cli(tmp_path / "kn", f"--bank_from={tmp_path}/doc.txt",
                  f"--bank_out={tmp_path}/textbank", "--chunk_len=16")
  assert built.returncode == 0, built.stderr[-3000:]
  bank = memory.load(str(tmp_path / "textbank"), mesh_of((8, 1, 1)), dim=16)
  assert bank.size == -(-len(doc) // 16) and bank.manifest["source"].endswith("doc.txt")
  vocab = phase1_vocab()
  assert "".join(vocab.decode(row) for row in bank.chunks) == doc
  missing = run_cli(tmp_path / "empty", f"--bank_from={tmp_path}/doc.txt",
                    f"--bank_out={tmp_path}/x")
  assert missing.returncode != 0 and "no trained retriever" in missing.stderr
  assert len(missing.stderr.strip().splitlines()) == 1


def test_knowledge_cli_bad_workdir_is_one_line(tmp_path):
  blocker = tmp_path / "file"
  blocker.write_text("x")
  out = run_cli(blocker / "sub")
  assert out.returncode != 0
  assert out.stderr.strip().startswith("error:") and "--workdir" in out.stderr
  assert len(out.stderr.strip().splitlines()) == 1
