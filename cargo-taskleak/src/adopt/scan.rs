//! One source file: finds its tests with `syn` and decides, for each, the
//! line taskleak's attribute goes on, or why it cannot be marked; and lists
//! the files of the modules it declares.

use std::path::{Path, PathBuf};

use proc_macro2::LineColumn;
use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::{AttrStyle, Attribute, Expr, Item, ItemFn, ItemMacro, ItemMod, Lit, Meta};

use super::attrs::{self, Role};

/// Where a file is, which decides the attribute's spelling: in `src/`
/// taskleak is only a dev-dependency, so the attribute must vanish outside
/// `cfg(test)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Area {
    Src,
    Tests,
}

impl Area {
    pub(crate) fn attribute(self) -> &'static str {
        match self {
            Area::Src => "#[cfg_attr(test, taskleak::verify_no_leaks)]",
            Area::Tests => "#[taskleak::verify_no_leaks]",
        }
    }
}

/// A test that gets the attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Marked {
    /// The function's line.
    pub(crate) line: usize,
    pub(crate) name: String,
    /// `tokio::test`, `test`, `test_case` or `rstest`.
    pub(crate) kind: &'static str,
    /// The new line goes before this one (1-based).
    pub(crate) before_line: usize,
    /// The new line, indented, without its line ending.
    pub(crate) text: String,
}

/// Tests that cannot be marked, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Skipped {
    pub(crate) line: usize,
    pub(crate) name: String,
    /// More than one for the tests of a macro's body.
    pub(crate) count: usize,
    pub(crate) reason: String,
}

/// `mod name;`: the file it may be in, first match wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ModuleFile {
    pub(crate) candidates: Vec<PathBuf>,
    /// Whether its own `mod x;` are looked up beside it (a `mod.rs`, or a
    /// file named by `#[path]`) rather than in a folder named after it.
    pub(crate) mod_rs: bool,
    /// `#[taskleak::skip]` on the declaration: left alone.
    pub(crate) opted_out: bool,
}

/// What one file holds.
#[derive(Debug, Default)]
pub(crate) struct FileScan {
    pub(crate) marked: Vec<Marked>,
    pub(crate) skipped: Vec<Skipped>,
    /// Carrying the attribute already, or inside a checked module.
    pub(crate) already_checked: usize,
    /// `#[taskleak::skip]`, on the test or its module.
    pub(crate) opted_out: usize,
    pub(crate) modules: Vec<ModuleFile>,
}

/// Scans `source`, the file at `path`; `mod_rs` and `opted_out` as in
/// [`ModuleFile`].
///
/// # Errors
///
/// When `syn` cannot parse the file.
pub(crate) fn scan(source: &str, path: &Path, mod_rs: bool, opted_out: bool, area: Area) -> Result<FileScan, String> {
    let file = syn::parse_file(source).map_err(|error| {
        let at = error.span().start();
        format!("line {}:{}: {error}", at.line, at.column + 1)
    })?;
    let file_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mod_dir = if mod_rs {
        file_dir.clone()
    } else {
        file_dir.join(path.file_stem().unwrap_or_default())
    };
    let mut scanner = Scanner {
        lines: source.split('\n').map(|line| line.trim_end_matches('\r')).collect(),
        area,
        file_dir,
        mod_dir,
        inline_depth: 0,
        module_path: Vec::new(),
        checked_by_module: false,
        skipped_by_module: opted_out,
        out: FileScan::default(),
    };
    scanner.visit_file(&file);
    Ok(scanner.out)
}

struct Scanner<'a> {
    lines: Vec<&'a str>,
    area: Area,
    /// The file's folder: `#[path]` outside inline modules is relative to it.
    file_dir: PathBuf,
    /// Where the current module's `mod x;` files are.
    mod_dir: PathBuf,
    inline_depth: usize,
    module_path: Vec<String>,
    /// Inside a `#[taskleak::verify_no_leaks] mod …`: every test is checked.
    checked_by_module: bool,
    skipped_by_module: bool,
    out: FileScan,
}

/// What to do with one function.
#[derive(Debug)]
enum Decision {
    NotATest,
    AlreadyChecked,
    OptedOut,
    Mark {
        kind: &'static str,
        before_line: usize,
        text: String,
    },
    Skip(String),
}

impl<'ast> Visit<'ast> for Scanner<'_> {
    // Tests are items of modules; function bodies, impls and the rest hold none
    // that libtest could run.
    fn visit_item(&mut self, item: &'ast Item) {
        match item {
            Item::Mod(module) => self.visit_item_mod(module),
            Item::Fn(function) => self.visit_item_fn(function),
            Item::Macro(mac) => self.visit_item_macro(mac),
            _ => {}
        }
    }

    fn visit_item_mod(&mut self, module: &'ast ItemMod) {
        let roles: Vec<Role> = module.attrs.iter().map(attrs::role).collect();
        let opted_out = self.skipped_by_module || roles.contains(&Role::Skip);
        let name = module.ident.to_string();
        let path_attr = module.attrs.iter().find_map(path_attribute);
        // `#[path]` is relative to the file's folder, or, inside inline
        // modules, to theirs.
        let path_base = if self.inline_depth == 0 {
            &self.file_dir
        } else {
            &self.mod_dir
        };
        let Some((_, items)) = &module.content else {
            let (candidates, mod_rs) = match path_attr {
                Some(path) => (vec![path_base.join(path)], true),
                None => (
                    vec![
                        self.mod_dir.join(format!("{name}.rs")),
                        self.mod_dir.join(&name).join("mod.rs"),
                    ],
                    false,
                ),
            };
            self.out.modules.push(ModuleFile {
                candidates,
                mod_rs,
                opted_out,
            });
            return;
        };
        let saved = (self.mod_dir.clone(), self.checked_by_module, self.skipped_by_module);
        self.mod_dir = match path_attr {
            Some(path) => path_base.join(path),
            None => self.mod_dir.join(&name),
        };
        self.checked_by_module |= roles.contains(&Role::Verify);
        self.skipped_by_module = opted_out;
        self.inline_depth += 1;
        self.module_path.push(name);
        for item in items {
            self.visit_item(item);
        }
        self.module_path.pop();
        self.inline_depth -= 1;
        (self.mod_dir, self.checked_by_module, self.skipped_by_module) = saved;
    }

    fn visit_item_fn(&mut self, function: &'ast ItemFn) {
        let line = function.sig.ident.span().start().line;
        let name = self.name(&function.sig.ident.to_string());
        match self.decide(function) {
            Decision::NotATest => {}
            Decision::AlreadyChecked => self.out.already_checked += 1,
            Decision::OptedOut => self.out.opted_out += 1,
            Decision::Mark {
                kind,
                before_line,
                text,
            } => self.out.marked.push(Marked {
                line,
                name,
                kind,
                before_line,
                text,
            }),
            Decision::Skip(reason) => self.out.skipped.push(Skipped {
                line,
                name,
                count: 1,
                reason,
            }),
        }
    }

    fn visit_item_macro(&mut self, mac: &'ast ItemMacro) {
        // `cfg_rt! { mod task; … }`: a macro whose body is items usually
        // passes them through; its modules and tests are the crate's.
        if !mac.mac.path.is_ident("macro_rules")
            && let Ok(body) = syn::parse2::<syn::File>(mac.mac.tokens.clone())
        {
            for item in &body.items {
                self.visit_item(item);
            }
            return;
        }
        let count = attrs::count_test_attributes(&mac.mac.tokens);
        if count == 0 || self.checked_by_module || self.skipped_by_module {
            return;
        }
        let line = mac.mac.path.span().start().line;
        let (name, reason) = match &mac.ident {
            Some(ident) if mac.mac.path.is_ident("macro_rules") => (
                self.name(&format!("macro_rules! {ident}")),
                "tests a `macro_rules!` generates cannot be seen from outside it: put the attribute in the \
                 macro's body, above its `#[test]`/`#[tokio::test]`, by hand",
            ),
            _ => {
                let path: Vec<String> = mac
                    .mac
                    .path
                    .segments
                    .iter()
                    .map(|segment| segment.ident.to_string())
                    .collect();
                let path = path.join("::");
                (
                    self.name(&format!("{path}!")),
                    "tests inside a macro invocation whose body is not plain items cannot be marked: mark \
                     them by hand inside it",
                )
            }
        };
        self.out.skipped.push(Skipped {
            line,
            name,
            count,
            reason: reason.to_owned(),
        });
    }
}

impl Scanner<'_> {
    fn name(&self, item: &str) -> String {
        let mut parts = self.module_path.clone();
        parts.push(item.to_owned());
        parts.join("::")
    }

    fn decide(&self, function: &ItemFn) -> Decision {
        let outer: Vec<&Attribute> = function
            .attrs
            .iter()
            .filter(|attr| matches!(attr.style, AttrStyle::Outer))
            .collect();
        let roles: Vec<Role> = outer.iter().map(|attr| attrs::role(attr)).collect();
        let test = roles
            .iter()
            .position(|role| matches!(role, Role::Test | Role::TokioTest));
        let cases: Vec<usize> = (0..roles.len()).filter(|&at| roles[at] == Role::TestCase).collect();
        let rstest = roles.contains(&Role::Rstest);
        let framework = roles.iter().find_map(|role| match role {
            Role::OtherFramework(name) => Some(name.clone()),
            _ => None,
        });
        let hidden = roles.contains(&Role::HiddenTest);
        if test.is_none() && cases.is_empty() && !rstest && framework.is_none() && !hidden {
            return Decision::NotATest;
        }
        if roles.contains(&Role::Verify) || self.checked_by_module {
            return Decision::AlreadyChecked;
        }
        if roles.contains(&Role::Skip) || self.skipped_by_module {
            return Decision::OptedOut;
        }
        if let Some(name) = framework {
            return Decision::Skip(format!(
                "`#[{name}]` is another framework's test attribute; taskleak's wraps `#[test]` and \
                 `#[tokio::test]` only"
            ));
        }
        if hidden && test.is_none() {
            return Decision::Skip(
                "its test attribute is behind `cfg_attr(…)`, where taskleak's cannot see it: add \
                 `#[cfg_attr(<the same condition>, taskleak::verify_no_leaks)]` above it by hand"
                    .to_owned(),
            );
        }
        let is_async = function.sig.asyncness.is_some();
        match test.map(|at| (&roles[at], outer[at])) {
            Some((Role::TokioTest, _)) if !is_async => {
                return Decision::Skip("`#[tokio::test]` on a function that is not `async`".to_owned());
            }
            Some((Role::TokioTest, attr)) => {
                if let Some(why) = attrs::unsupported_tokio_args(attr) {
                    return Decision::Skip(why);
                }
            }
            Some((_, _)) if is_async => {
                return Decision::Skip(
                    "an `async fn` under `#[test]` (another macro runs it): taskleak checks async tests under \
                     `#[tokio::test]`"
                        .to_owned(),
                );
            }
            None if is_async => {
                return Decision::Skip(
                    "an async test without `#[tokio::test]` (rstest or test-case then run it on another \
                     runtime): add `#[tokio::test]` to check it"
                        .to_owned(),
                );
            }
            _ => {}
        }
        if !rstest && cases.is_empty() {
            if !function.sig.inputs.is_empty() {
                return Decision::Skip("the test takes arguments, which a test function cannot".to_owned());
            }
            // Lifetimes are fine, as libtest has them; types and consts
            // libtest refuses too.
            let not_a_lifetime = function
                .sig
                .generics
                .params
                .iter()
                .any(|param| !matches!(param, syn::GenericParam::Lifetime(_)));
            if not_a_lifetime {
                return Decision::Skip(
                    "the test has type or const parameters, which a test function cannot".to_owned(),
                );
            }
        }
        if !is_async && cases.iter().any(|&at| attrs::case_expects_panic(outer[at])) {
            return Decision::Skip(
                "a plain test whose cases expect a panic (`=> panics`): a leak fails a case by panicking, \
                 which would satisfy it, so taskleak refuses it; move those cases to a function of their own"
                    .to_owned(),
            );
        }
        let kind = match (rstest, cases.is_empty(), test.map(|at| &roles[at])) {
            (true, _, _) => "rstest",
            (false, false, _) => "test_case",
            (false, true, Some(Role::TokioTest)) => "tokio::test",
            _ => "test",
        };
        // Above the test attribute and any `#[test_case]` lines; with rstest,
        // below it and its cases (it copies what follows to each case), and
        // above a `#[tokio::test]`.
        let target = if rstest {
            test
        } else {
            test.into_iter().chain(cases.iter().copied()).min()
        };
        let spans: Vec<(LineColumn, LineColumn)> = outer.iter().map(|attr| attr_lines(attr)).collect();
        let target_start = match target {
            Some(at) => spans[at].0,
            None => signature_start(function),
        };
        let must_stay_above = |at: usize| rstest && target.is_none_or(|target| at < target);
        match self.line_above(target_start, &spans, must_stay_above) {
            Ok((before_line, indent)) => Decision::Mark {
                kind,
                before_line,
                text: format!("{indent}{}", self.area.attribute()),
            },
            Err(reason) => Decision::Skip(reason),
        }
    }

    /// The line to insert before, and its indentation: the line of
    /// `target`, moved up past attributes that share it (they end up below
    /// the new line), unless one of those must stay above.
    fn line_above(
        &self,
        target: LineColumn,
        spans: &[(LineColumn, LineColumn)],
        must_stay_above: impl Fn(usize) -> bool,
    ) -> Result<(usize, String), String> {
        let sharing = || {
            Err(
                "its attributes share lines in a way that leaves no line for taskleak's: put each on a line of \
                 its own, then run this again"
                    .to_owned(),
            )
        };
        let mut at = target;
        loop {
            let mut moved = false;
            for (index, (start, end)) in spans.iter().enumerate() {
                let shares =
                    start.line < at.line && end.line >= at.line || start.line == at.line && start.column < at.column;
                if shares {
                    if must_stay_above(index) {
                        return sharing();
                    }
                    at = *start;
                    moved = true;
                }
            }
            if !moved {
                break;
            }
        }
        if spans
            .iter()
            .enumerate()
            .any(|(index, (_, end))| must_stay_above(index) && end.line >= at.line)
        {
            return sharing();
        }
        let line = self.lines.get(at.line - 1).copied().unwrap_or_default();
        let indent: String = line.chars().take(at.column).collect();
        if !indent.chars().all(char::is_whitespace) {
            return Err(format!(
                "line {} has other code before the test's attributes: move them to a line of their own, then \
                 run this again",
                at.line
            ));
        }
        Ok((at.line, indent))
    }
}

/// Where an attribute starts and ends (a doc comment is one too).
fn attr_lines(attr: &Attribute) -> (LineColumn, LineColumn) {
    (attr.pound_token.span.start(), attr.bracket_token.span.close().end())
}

/// Where the function itself starts, after its attributes.
fn signature_start(function: &ItemFn) -> LineColumn {
    match &function.vis {
        syn::Visibility::Inherited => function.sig.span().start(),
        visibility => visibility.span().start(),
    }
}

/// `#[path = "…"]` on a module.
fn path_attribute(attr: &Attribute) -> Option<String> {
    match &attr.meta {
        Meta::NameValue(pair) if pair.path.is_ident("path") => match &pair.value {
            Expr::Lit(expr) => match &expr.lit {
                Lit::Str(text) => Some(text.value()),
                _ => None,
            },
            _ => None,
        },
        _ => None,
    }
}
