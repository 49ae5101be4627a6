from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
# Reviewed data the code reads (taxonomy, label mappings, sample files): fixtures/README.md.
FIXTURES_DIR = BASE_DIR / "fixtures"
env = environ.Env()

if env.bool("DJANGO_READ_DOT_ENV_FILE", default=True) and (BASE_DIR / ".env").exists():
    env.read_env(str(BASE_DIR / ".env"))

# Matches the server that `make db-start` runs (scripts/db.sh).
LOCAL_DATABASE_URL = "postgis://barrio:barrio@127.0.0.1:{port}/barrio".format(
    port=env("BARRIO_PGPORT", default="55432")
)
