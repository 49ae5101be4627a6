import os

from config.env import env
from config.settings.base import *  # noqa: F403

DEBUG = False
SECRET_KEY = "test-only-secret-key"  # noqa: S105
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
MAP_TILE_URL = ""
ALLOWED_HOSTS = ["*"]
# The throttle counts in the cache, which lives as long as the test process: the whole
# suite (and the API fuzz test) must not run into the public API's rate by accident.
# public/tests/test_api.py sets a low rate where it tests the 429.
PUBLIC_API_RATE = "100000/minute"

# One test database per test process, so that several runs on one machine (a developer's
# suite and a helper's, or CI) never drop each other's database.
DATABASES["default"]["TEST"] = {  # noqa: F405
    "NAME": env("BARRIO_TEST_DB_NAME", default=f"test_barrio_{os.getpid()}")
}

# Jobs run inline when enqueued, so a test sees their result at once.
TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}

# Uploaded and generated files (demo photos, upload folders) go to a folder of this test
# process, removed when it exits, never into the checkout's media/.
import atexit  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402

MEDIA_ROOT = tempfile.mkdtemp(prefix="barrio-test-media-")
atexit.register(shutil.rmtree, MEDIA_ROOT, ignore_errors=True)
INCIDENT_UPLOAD_ROOT = tempfile.mkdtemp(prefix="barrio-test-uploads-")
atexit.register(shutil.rmtree, INCIDENT_UPLOAD_ROOT, ignore_errors=True)
# No deployment extract; the demo's street map, when a test loads the demo, is written to
# this process's media folder, never into the checkout's var/.
MAP_PMTILES = ""
MAP_DEMO_PMTILES = os.path.join(MEDIA_ROOT, "basemap", "demo-city.pmtiles")
