"""Settings shared by every environment; everything site-specific comes from the environment."""

from django.utils.translation import gettext_lazy as _

from config.env import BASE_DIR, LOCAL_DATABASE_URL, env

SECRET_KEY = env("DJANGO_SECRET_KEY", default="insecure-development-key-change-me")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.gis",
    "django.contrib.postgres",
    "rest_framework",
    "rest_framework_gis",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_tasks",
    "django_tasks_db",
    "geo",
    "accounts",
    "neighborhoods",
    "incidents",
    "hotspots",
    "publicspaces",
    "public",
    "maps",
    "opendata",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Before the session, CSRF and language middleware read the cookies.
    "config.middleware.DropNulCookiesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, so that its 400 is in the user's language and goes through the others.
    "config.middleware.RefuseNulCharactersMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=LOCAL_DATABASE_URL)}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DJANGO_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Neighbors are mostly Spanish-speaking: Spanish first, English second.
LANGUAGE_CODE = "es"
LANGUAGES = [("es", _("Spanish")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
TIME_ZONE = env("DJANGO_TIME_ZONE", default="UTC")
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env("DJANGO_STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))
MEDIA_URL = "/media/"
MEDIA_ROOT = env("DJANGO_MEDIA_ROOT", default=str(BASE_DIR / "media"))
# Uploaded incident files wait here for their import job; never served.
INCIDENT_UPLOAD_ROOT = env("BARRIO_UPLOAD_ROOT", default=str(BASE_DIR / "var" / "uploads"))

# Staff who are not admin users (planners, municipal staff) sign in here.
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "accounts-home"  # by role: accounts.views.home
LOGOUT_REDIRECT_URL = "public-map"

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "common.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    # Throttles (the public API's) tell clients apart by address: REMOTE_ADDR unless the
    # deployment says how many reverse proxies in front add X-Forwarded-For (DRF would
    # otherwise trust a header any client can send).
    "NUM_PROXIES": env.int("BARRIO_NUM_PROXIES", default=0),
}

SPECTACULAR_SETTINGS = {
    # In the reader's language (Accept-Language, or ?lang=es|en on /api/schema/ and
    # /api/docs/, which drf-spectacular honours).
    "TITLE": _("Barrio API"),
    "DESCRIPTION": _(
        "Boundaries and area lookup, incidents and their imports (planners), hotspot runs "
        "(planners), public spaces and their recovery (municipal and program staff; the "
        "public layer is open)."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Every operation's 400/403/404 (and each error's JSON body), from one place.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.api.document_error_responses",
    ],
    # Offline: Swagger UI and Redoc from the installed sidecar package, never a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several models have a "status" field with their own choices: name each set.
    "ENUM_NAME_OVERRIDES": {
        "RecoveryProjectStatusEnum": "publicspaces.models.ProjectStatus",
        # Import batches and hotspot runs share one job lifecycle.
        "JobStatusEnum": "incidents.models.ImportBatch.Status",
    },
    # Tile coordinates (geo.converters): whole numbers of at most 8 digits; one outside
    # the XYZ pyramid is a 400.
    "PATH_CONVERTER_OVERRIDES": {"tile": {"type": "integer", "minimum": 0, "maximum": 99999999}},
}

# Background jobs (imports, later hotspot runs) in the database; `make run` starts a worker
# (`manage.py db_worker`).
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

# --- Spatial policy -------------------------------------------------------------
# Everything is stored in WGS84; metric work uses each region's own UTM zone
# (Region.metric_srid), never degrees. See geo/conf.py.
GEO_STORAGE_SRID = 4326

# --- Public map -----------------------------------------------------------------
# The public map's privacy rules (public/privacy.py reads them, with these defaults): a
# cell-month count below the minimum is not published (higher for "extra care"
# categories), and a month is published once PUBLIC_LAG_MONTHS full months have passed
# after it (1: January is published from 1 March).
PUBLIC_MIN_COUNT = env.int("PUBLIC_MIN_COUNT", default=5)
PUBLIC_MIN_COUNT_EXTRA_CARE = env.int("PUBLIC_MIN_COUNT_EXTRA_CARE", default=10)
PUBLIC_LAG_MONTHS = env.int("PUBLIC_LAG_MONTHS", default=1)
PUBLIC_H3_RESOLUTIONS = (7, 8, 9)
# The public API (/api/v1/public/): how long anyone may cache an answer (seconds), and
# how many requests a client (by address) may make (DRF rate: "60/minute").
PUBLIC_MAX_AGE = env.int("PUBLIC_MAX_AGE", default=300)
PUBLIC_API_RATE = env("PUBLIC_API_RATE", default="60/minute")
# Empty tile URL: the map draws boundaries on a plain background and sends no
# request beyond this server. Set e.g. an internal tile server for production.
MAP_TILE_URL = env("MAP_TILE_URL", default="")
MAP_TILE_ATTRIBUTION = env("MAP_TILE_ATTRIBUTION", default="")
# The self-hosted vector base map (geo/basemap.py): a PMTiles archive of the deployment's
# own extract (README: "Base map"), read by the browser from this server with range
# requests. Without one, the demo city's generated street map is served once load_demo has
# written it. MAP_TILE_URL, when set, replaces both.
MAP_PMTILES = env("MAP_PMTILES", default="")
MAP_PMTILES_ATTRIBUTION = env("MAP_PMTILES_ATTRIBUTION", default="")
MAP_DEMO_PMTILES = env(
    "MAP_DEMO_PMTILES", default=str(BASE_DIR / "var" / "basemap" / "demo-city.pmtiles")
)
MAP_DEFAULT_CENTER = env.list("MAP_DEFAULT_CENTER", cast=float, default=[-12.05, -77.05])
MAP_DEFAULT_ZOOM = env.int("MAP_DEFAULT_ZOOM", default=11)
# The region (its code) maps open on for a visitor who has not picked one; empty: the
# first region by name.
MAP_DEFAULT_REGION = env("MAP_DEFAULT_REGION", default="")

# Hard caps for GeoJSON endpoints (features per response).
GEOJSON_MAX_FEATURES = env.int("GEOJSON_MAX_FEATURES", default=20000)
# Incidents per vector tile (the most recent are kept); hides nothing from planners, who
# zoom in, and keeps a low-zoom tile of a metro area small.
INCIDENT_TILE_MAX_FEATURES = env.int("INCIDENT_TILE_MAX_FEATURES", default=10000)
# An import bringing more rows than the incident table holds (and at least this many) sets
# the table's secondary indexes aside and builds them once before committing; readers of
# incidents wait meanwhile. False keeps every index current row by row, always.
INCIDENT_BULK_LOAD = env.bool("INCIDENT_BULK_LOAD", default=True)
INCIDENT_BULK_LOAD_MIN_ROWS = env.int("INCIDENT_BULK_LOAD_MIN_ROWS", default=50_000)
# How long a bulk load waits for the table before keeping the indexes row by row instead.
INCIDENT_BULK_LOAD_LOCK_TIMEOUT_MS = env.int("INCIDENT_BULK_LOAD_LOCK_TIMEOUT_MS", default=2_000)
# Bounds an incident file must keep, checked by streaming it before pandas or GDAL build
# anything (incidents.services.bounds): columns of a CSV row (different property names in
# a GeoJSON) and bytes of a CSV row (its quoted line breaks included). Police exports have
# fewer than 20 columns and rows under 400 bytes (CDMX FGJ: 9 and 278; Boston 311: 17 and
# 340); 64 KiB leaves room for a long free-text description. A 16 MB file of 2M columns
# would otherwise take 6 GB and minutes.
INCIDENT_IMPORT_MAX_COLUMNS = env.int("INCIDENT_IMPORT_MAX_COLUMNS", default=500)
INCIDENT_IMPORT_MAX_ROW_BYTES = env.int("INCIDENT_IMPORT_MAX_ROW_BYTES", default=65_536)

# --- Public spaces ----------------------------------------------------------------
# Project photos: checked and re-encoded by Pillow (publicspaces.photos); EXIF is dropped.
PUBLICSPACES_PHOTO_MAX_BYTES = env.int("PUBLICSPACES_PHOTO_MAX_BYTES", default=10 * 1024 * 1024)
# Larger sides are refused before decoding (a "decompression bomb" guard) ...
PUBLICSPACES_PHOTO_MAX_DIMENSION = env.int("PUBLICSPACES_PHOTO_MAX_DIMENSION", default=10000)
# ... and so are more pixels than this, read from the header too; it is also Pillow's own
# guard (Image.MAX_IMAGE_PIXELS) for the whole process. Decoding costs memory by the pixel,
# not by the byte: a 9,400 x 9,400 PNG of a few KB is 88 megapixels and cost ~400 MB and 2 s.
# 25 megapixels takes phones' photos (12 MP, 24.5 MP on recent iPhones) and 24 MP cameras'
# (6000 x 4000); the stored copy has at most 2560 px a side (6.5 MP) anyway. Measured at
# 25 MP, one upload costs at most ~60 MB as JPEG (decoded at a reduced scale), ~150 MB as
# PNG (~250 MB with alpha) and ~390 MB as WebP, whose decoder keeps several full copies;
# at 40 MP the WebP would cost ~610 MB.
PUBLICSPACES_PHOTO_MAX_PIXELS = env.int("PUBLICSPACES_PHOTO_MAX_PIXELS", default=25_000_000)
# ... and accepted photos are scaled down to this side when stored.
PUBLICSPACES_PHOTO_STORED_MAX_SIDE = env.int("PUBLICSPACES_PHOTO_STORED_MAX_SIDE", default=2560)
PUBLICSPACES_PHOTO_FORMATS = ["JPEG", "PNG", "WEBP"]
# A municipal user's space may reach this far past their district's border (drawing and
# GPS imprecision), in metres; see publicspaces.services.
PUBLICSPACES_SCOPE_TOLERANCE_M = env.float("PUBLICSPACES_SCOPE_TOLERANCE_M", default=2.0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("DJANGO_LOG_LEVEL", default="WARNING")},
}

# gis.W001: Debian 12's GDAL 3.6 cannot block file/network access in spatial references.
# Barrio never hands user input to Django's GDAL bindings: uploaded vector files are read
# with pyogrio (its own GDAL 3.10+ with a driver allowlist, see geo/io.py) and geometry
# parameters are parsed by our own validators before they reach GEOS.
SILENCED_SYSTEM_CHECKS = ["gis.W001"]
