/*
 * The registry's SQLite schema, version 1 (FDN_REGISTRY_SCHEMA_VERSION),
 * shared by every file of lib/registry/.  doc/registry.md documents it.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#ifndef FDN_REGISTRY_SCHEMA_PRIVATE_H
#define FDN_REGISTRY_SCHEMA_PRIVATE_H

/* Applied in one transaction to a new database (user_version 0 -> 1).
 * Later versions add migration steps; rows are never rewritten in place
 * by a migration without an audit record saying so. */
#define FDN_REGISTRY_SCHEMA_V1 \
	"CREATE TABLE patient (" \
	"  id INTEGER PRIMARY KEY," \
	"  pseudonym TEXT NOT NULL UNIQUE," \
	"  sex TEXT NOT NULL DEFAULT ''," \
	"  consent TEXT NOT NULL DEFAULT 'granted' CHECK (consent IN ('granted','withdrawn'))," \
	"  consent_changed TEXT," \
	"  consent_reason TEXT);" \
	"CREATE TABLE study (" \
	"  id INTEGER PRIMARY KEY," \
	"  uid TEXT NOT NULL UNIQUE," \
	"  patient_id INTEGER NOT NULL REFERENCES patient(id)," \
	"  study_date TEXT NOT NULL DEFAULT ''," \
	"  description TEXT NOT NULL DEFAULT ''," \
	"  age TEXT NOT NULL DEFAULT ''," \
	"  age_years REAL);" /* age in years, NULL when unknown: cohort filters */ \
	"CREATE TABLE series (" \
	"  id INTEGER PRIMARY KEY," \
	"  uid TEXT NOT NULL UNIQUE," \
	"  study_id INTEGER NOT NULL REFERENCES study(id)," \
	"  modality TEXT NOT NULL DEFAULT ''," \
	"  body_part TEXT NOT NULL DEFAULT ''," \
	"  manufacturer TEXT NOT NULL DEFAULT ''," \
	"  description TEXT NOT NULL DEFAULT ''," \
	"  number INTEGER);" \
	"CREATE TABLE instance (" \
	"  id INTEGER PRIMARY KEY," \
	"  uid TEXT NOT NULL UNIQUE," \
	"  series_id INTEGER NOT NULL REFERENCES series(id)," \
	"  sop_class TEXT NOT NULL," \
	"  number INTEGER," \
	"  rows INTEGER NOT NULL DEFAULT 0," \
	"  columns INTEGER NOT NULL DEFAULT 0," \
	"  frames INTEGER NOT NULL DEFAULT 0," \
	"  sha256 TEXT NOT NULL," \
	"  size INTEGER NOT NULL," \
	"  transfer_syntax TEXT NOT NULL," \
	"  added TEXT NOT NULL," \
	"  purged INTEGER NOT NULL DEFAULT 0);" \
	/* Covering for cohort queries (cohort.c walks series first, then \
	 * each series' instances in this index's order): purged and the \
	 * size fields filters test are read without touching the wide \
	 * instance rows. */ \
	"CREATE INDEX instance_series ON instance(series_id, purged, \"rows\", \"columns\", frames);" \
	"CREATE INDEX series_study ON series(study_id);" \
	"CREATE INDEX study_patient ON study(patient_id);" \
	/* study_id included: a modality filter reaches the study without \
	 * reading the series row. */ \
	"CREATE INDEX series_modality ON series(modality, study_id);" \
	"CREATE INDEX study_date ON study(study_date);" \
	"CREATE TABLE label (" \
	"  level INTEGER NOT NULL," /* fdn_label_level */ \
	"  object_id INTEGER NOT NULL," /* study/series/instance id */ \
	"  key TEXT NOT NULL," \
	"  value TEXT NOT NULL," \
	"  PRIMARY KEY (level, object_id, key));" \
	"CREATE INDEX label_key ON label(key, value);" \
	"CREATE TABLE cohort (" \
	"  id INTEGER PRIMARY KEY," \
	"  name TEXT NOT NULL UNIQUE," \
	"  filter TEXT NOT NULL," \
	"  created TEXT NOT NULL," \
	"  snapshot_sha256 TEXT NOT NULL," \
	"  members INTEGER NOT NULL);" \
	"CREATE TABLE cohort_member (" \
	"  cohort_id INTEGER NOT NULL REFERENCES cohort(id)," \
	"  instance_id INTEGER NOT NULL REFERENCES instance(id)," \
	"  PRIMARY KEY (cohort_id, instance_id)) WITHOUT ROWID;" \
	"CREATE TABLE audit (" \
	"  seq INTEGER PRIMARY KEY," /* 1, 2, 3, ... without gaps */ \
	"  record TEXT NOT NULL," /* canonical JSON, see audit.c */ \
	"  prev_sha256 TEXT NOT NULL," /* 64 zeros for seq 1 */ \
	"  sha256 TEXT NOT NULL);" /* SHA-256 of prev_sha256 || record */

#endif
