-- robint-bench database schema version 1 (as created by commit 195e249), for the migration test
CREATE TABLE robint_meta (
	"key" VARCHAR(64) NOT NULL, 
	value TEXT NOT NULL, 
	CONSTRAINT pk_robint_meta PRIMARY KEY ("key")
);
CREATE TABLE models (
	id INTEGER NOT NULL, 
	name VARCHAR(200) NOT NULL, 
	source TEXT NOT NULL, 
	file_sha256 VARCHAR(64) NOT NULL, 
	weights_sha256 VARCHAR(64), 
	info JSON NOT NULL, 
	created_at DATETIME NOT NULL, 
	CONSTRAINT pk_models PRIMARY KEY (id), 
	CONSTRAINT uq_models_name UNIQUE (name, file_sha256, weights_sha256)
);
CREATE TABLE runs (
	id VARCHAR(32) NOT NULL, 
	model_id INTEGER NOT NULL, 
	dataset VARCHAR(100) NOT NULL, 
	threat_model VARCHAR(10) NOT NULL, 
	eps FLOAT NOT NULL, 
	eps_text VARCHAR(32) NOT NULL, 
	n_examples INTEGER NOT NULL, 
	seed INTEGER NOT NULL, 
	attack VARCHAR(100) NOT NULL, 
	config_key VARCHAR(64) NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	clean_acc FLOAT, 
	robust_acc FLOAT, 
	config JSON NOT NULL, 
	provenance JSON NOT NULL, 
	timings JSON NOT NULL, 
	details JSON NOT NULL, 
	flags JSON NOT NULL, 
	error TEXT, 
	created_at DATETIME NOT NULL, 
	finished_at DATETIME, 
	CONSTRAINT pk_runs PRIMARY KEY (id), 
	CONSTRAINT fk_runs_model_id_models FOREIGN KEY(model_id) REFERENCES models (id)
);
CREATE TABLE examples (
	run_id VARCHAR(32) NOT NULL, 
	idx INTEGER NOT NULL, 
	label INTEGER NOT NULL, 
	clean_pred INTEGER NOT NULL, 
	adv_pred INTEGER NOT NULL, 
	clean_correct BOOLEAN NOT NULL, 
	robust_correct BOOLEAN NOT NULL, 
	perturbation FLOAT NOT NULL, 
	CONSTRAINT pk_examples PRIMARY KEY (run_id, idx), 
	CONSTRAINT fk_examples_run_id_runs FOREIGN KEY(run_id) REFERENCES runs (id) ON DELETE CASCADE
);
CREATE TABLE metrics (
	id INTEGER NOT NULL, 
	run_id VARCHAR(32) NOT NULL, 
	method VARCHAR(100) NOT NULL, 
	metric VARCHAR(100) NOT NULL, 
	mean FLOAT, 
	std FLOAT, 
	n INTEGER NOT NULL, 
	ci_low FLOAT, 
	ci_high FLOAT, 
	"values" JSON NOT NULL, 
	details JSON NOT NULL, 
	CONSTRAINT pk_metrics PRIMARY KEY (id), 
	CONSTRAINT uq_metrics_run_id UNIQUE (run_id, method, metric), 
	CONSTRAINT fk_metrics_run_id_runs FOREIGN KEY(run_id) REFERENCES runs (id) ON DELETE CASCADE
);
CREATE INDEX ix_metrics_run_id ON metrics (run_id);
CREATE INDEX ix_models_name ON models (name);
CREATE INDEX ix_runs_config_key ON runs (config_key);
CREATE INDEX ix_runs_model_id ON runs (model_id);
CREATE INDEX ix_runs_status ON runs (status);
INSERT INTO robint_meta (key, value) VALUES ('schema_version', '1');
