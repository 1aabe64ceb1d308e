//! Configuration from a directory (`callbacks serve`, `callbacks validate`): every `*.json`
//! client file and the optional application id map, every problem in every file reported.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::{
    parse_application_ids, parse_client, problem, ClientSettings, ConfigErrors, ConfigSet,
    APPLICATION_ID_MAP_FILE,
};

/// The client configuration files of a directory: every `*.json` except the application id map.
pub fn config_files(dir: &Path) -> Result<Vec<PathBuf>, ConfigErrors> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        ConfigErrors(vec![problem(
            &dir.display().to_string(),
            "",
            format!("cannot read directory: {e}"),
        )])
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|x| x == "json")
                && p.file_name().is_some_and(|n| n != APPLICATION_ID_MAP_FILE)
                && p.is_file()
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Reads the application id map of a directory, if there is one.
pub fn load_application_ids(dir: &Path) -> Result<HashMap<String, String>, ConfigErrors> {
    let path = dir.join(APPLICATION_ID_MAP_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => parse_application_ids(&path.display().to_string(), &bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(HashMap::new()),
        Err(e) => Err(ConfigErrors(vec![problem(
            &path.display().to_string(),
            "",
            format!("cannot read: {e}"),
        )])),
    }
}

/// Loads one configuration file.
pub fn load_file(
    path: &Path,
    application_ids: &HashMap<String, String>,
) -> Result<ClientSettings, ConfigErrors> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path)
        .map_err(|e| ConfigErrors(vec![problem(&name, "", format!("cannot read: {e}"))]))?;
    parse_client(&name, &bytes, application_ids)
}

/// Loads every client configuration in a directory, reporting every problem in every file.
pub fn load_dir(dir: &Path) -> Result<ConfigSet, ConfigErrors> {
    let mut errs = Vec::new();
    let application_ids = load_application_ids(dir).unwrap_or_else(|e| {
        errs.extend(e.0);
        HashMap::new()
    });
    let mut set = ConfigSet::default();
    let mut owner: HashMap<String, PathBuf> = HashMap::new();
    for path in config_files(dir)? {
        match load_file(&path, &application_ids) {
            Ok(client) => {
                if let Some(first) = owner.get(&client.client_id) {
                    errs.push(problem(
                        &path.display().to_string(),
                        "/clientId",
                        format!(
                            "client {:?} is already configured in {}",
                            client.client_id,
                            first.display()
                        ),
                    ));
                    continue;
                }
                owner.insert(client.client_id.clone(), path.clone());
                set.insert(client);
            }
            Err(e) => errs.extend(e.0),
        }
    }
    if errs.is_empty() {
        Ok(set)
    } else {
        Err(ConfigErrors(errs))
    }
}
