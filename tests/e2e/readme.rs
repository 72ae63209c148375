//! The README's table of inputs and outputs is generated from action.yml, so
//! the two cannot drift: this test fails when they differ, and rewrites the
//! README section when run with `UPDATE_README=1`.

use std::collections::HashMap;

#[derive(serde::Deserialize)]
struct Action {
    inputs: HashMap<String, Input>,
    outputs: HashMap<String, Output>,
}

#[derive(serde::Deserialize)]
struct Input {
    description: String,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    default: Option<String>,
}

#[derive(serde::Deserialize)]
struct Output {
    description: String,
}

/// Keys of a top-level mapping of action.yml, in file order.
fn keys_in_order(text: &str, section: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if !line.starts_with(' ') && !line.starts_with('#') && !line.is_empty() {
            inside = line.trim_end() == format!("{section}:");
            continue;
        }
        if inside {
            if let Some(key) = line.strip_prefix("  ").and_then(|l| l.strip_suffix(':')) {
                if !key.starts_with(' ') && !key.starts_with('#') {
                    keys.push(key.to_owned());
                }
            }
        }
    }
    keys
}

fn cell(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

fn table() -> String {
    let path = crate::harness::repo_root().join("action.yml");
    let text = std::fs::read_to_string(path).unwrap();
    let action: Action = serde_saphyr::from_str(&text).expect("action.yml parses");
    let mut out =
        String::from("| input | required | default | description |\n| --- | --- | --- | --- |\n");
    let order = keys_in_order(&text, "inputs");
    assert_eq!(
        order.len(),
        action.inputs.len(),
        "every input found in order"
    );
    for name in order {
        let input = &action.inputs[&name];
        let default = match input.default.as_deref() {
            Some("") | None => String::new(),
            Some(d) => format!("`{}`", cell(d)),
        };
        out.push_str(&format!(
            "| `{name}` | {} | {default} | {} |\n",
            if input.required { "yes" } else { "" },
            cell(&input.description)
        ));
    }
    out.push_str("\n| output | description |\n| --- | --- |\n");
    let order = keys_in_order(&text, "outputs");
    assert_eq!(order.len(), action.outputs.len());
    for name in order {
        out.push_str(&format!(
            "| `{name}` | {} |\n",
            cell(&action.outputs[&name].description)
        ));
    }
    out
}

#[test]
fn readme_lists_every_input_and_output_of_action_yml() {
    let path = crate::harness::repo_root().join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let (start, end) = ("<!-- inputs:start -->\n", "<!-- inputs:end -->");
    let from = readme
        .find(start)
        .expect("README has the inputs:start marker")
        + start.len();
    let to = readme.find(end).expect("README has the inputs:end marker");
    let want = table();
    if readme[from..to] != want {
        if std::env::var("UPDATE_README").is_ok_and(|v| v == "1") {
            let updated = format!("{}{want}{}", &readme[..from], &readme[to..]);
            std::fs::write(&path, updated).unwrap();
        } else {
            panic!(
                "README.md's inputs table differs from action.yml; run `UPDATE_README=1 cargo test --test e2e readme`"
            );
        }
    }
}
