//! Folded functions: every name the symbol table gives one machine-code address, when identical functions were merged.

// Off Linux only the fallback remains.
#![cfg_attr(not(target_os = "linux"), allow(dead_code))]

/// The demangled names of every function symbol that starts where the one
/// containing `address` starts, when there are two or more: the compiler
/// (LLVM's function merging, which std is built with) or the linker
/// (identical code folding) made identical functions one body with several
/// names, and a symbolizer shows one of them, not necessarily the one that
/// ran. Empty when the function has one name, or it cannot be told.
pub(crate) fn names_at(address: usize) -> Vec<String> {
    platform::names_at(address)
}

#[cfg(target_os = "linux")]
mod platform {
    use std::collections::HashMap;
    use std::ffi::{CStr, c_int, c_void};
    use std::path::PathBuf;
    use std::sync::{Arc, Mutex, OnceLock, PoisonError};

    use object::read::elf::{FileHeader, SectionHeader, Sym};
    use object::read::{ReadCache, ReadCacheOps, ReadRef, StringTable};
    use object::{Endianness, elf};

    #[cfg(target_pointer_width = "64")]
    type Header = elf::FileHeader64<Endianness>;
    #[cfg(target_pointer_width = "32")]
    type Header = elf::FileHeader32<Endianness>;

    /// One loaded object's function symbols, as far as folding needs them.
    #[derive(Debug, Default)]
    pub(super) struct Table {
        /// Each function's start and size (in the file's addresses), by start.
        ranges: Vec<(u64, u64)>,
        /// The names of every start that has more than one.
        folded: HashMap<u64, Vec<String>>,
    }

    impl Table {
        /// The names at the start of the function holding `address`, if folded.
        pub(super) fn names_at(&self, address: u64) -> Vec<String> {
            let after = self.ranges.partition_point(|&(start, _)| start <= address);
            let Some(&(start, size)) = after.checked_sub(1).and_then(|at| self.ranges.get(at)) else {
                return Vec::new();
            };
            // A size of 0 says nothing; a known size that ends before the
            // address means it is in code with no symbol of its own.
            if size != 0 && address >= start.saturating_add(size) {
                return Vec::new();
            }
            self.folded.get(&start).cloned().unwrap_or_default()
        }
    }

    pub(super) fn names_at(address: usize) -> Vec<String> {
        let Some(object) = loaded_object(address) else {
            return Vec::new();
        };
        // The return address of a call is one past it, and the call may be
        // a function's last instruction (one that does not return): look
        // one byte before, as the symbolizer does.
        let file_address = address.saturating_sub(1).wrapping_sub(object.bias) as u64;
        table(object.path).names_at(file_address)
    }

    /// Tables by object path, each read once per process (a test binary's
    /// symbol table is read again for no report).
    fn table(path: PathBuf) -> Arc<Table> {
        static TABLES: OnceLock<Mutex<HashMap<PathBuf, Arc<Table>>>> = OnceLock::new();
        let tables = TABLES.get_or_init(Default::default);
        let mut tables = tables.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(
            tables
                .entry(path)
                .or_insert_with_key(|path| Arc::new(read_table(path).unwrap_or_default())),
        )
    }

    /// The loaded object (program or shared library) holding an address.
    struct LoadedObject {
        path: PathBuf,
        /// What the loader added to the file's addresses.
        bias: usize,
    }

    struct Search {
        address: usize,
        found: Option<LoadedObject>,
    }

    fn loaded_object(address: usize) -> Option<LoadedObject> {
        let mut search = Search { address, found: None };
        // SAFETY: `dl_iterate_phdr` calls `visit` with valid `dl_phdr_info`
        // pointers for each loaded object, passing our `search` back as
        // `data`; it is used only during the call, which holds the loader's
        // lock (we are never in a signal handler here).
        unsafe {
            libc::dl_iterate_phdr(Some(visit), (&raw mut search).cast());
        }
        search.found
    }

    /// Stops (returns 1) at the object whose loaded segment holds the address.
    unsafe extern "C" fn visit(info: *mut libc::dl_phdr_info, _size: libc::size_t, data: *mut c_void) -> c_int {
        // SAFETY: `data` is the `Search` `loaded_object` passed, alive and
        // not otherwise borrowed during the iteration; `info` is valid for
        // this call (see `loaded_object`).
        let (search, info) = unsafe { (&mut *data.cast::<Search>(), &*info) };
        if info.dlpi_phdr.is_null() {
            return 0;
        }
        // SAFETY: `dlpi_phdr` points at `dlpi_phnum` program headers.
        let headers = unsafe { std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum)) };
        let bias = info.dlpi_addr as usize;
        let holds = headers.iter().any(|header| {
            let start = bias.wrapping_add(header.p_vaddr as usize);
            header.p_type == libc::PT_LOAD
                && (start..start.saturating_add(header.p_memsz as usize)).contains(&search.address)
        });
        if !holds {
            return 0;
        }
        // SAFETY: `dlpi_name` is null or a NUL-terminated string the loader
        // keeps for the object's life.
        let name = (!info.dlpi_name.is_null()).then(|| unsafe { CStr::from_ptr(info.dlpi_name) });
        let path = match name.map(CStr::to_bytes) {
            // The program itself has no name here. `/proc/self/exe` opens
            // the file that runs even if a rebuild has replaced it since.
            None | Some(b"") => PathBuf::from("/proc/self/exe"),
            Some(bytes) => PathBuf::from(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(bytes)),
        };
        search.found = Some(LoadedObject { path, bias });
        1
    }

    /// A file read in pieces: only the headers, the symbol table and its
    /// strings are read, not a test binary's hundreds of MB of debug info.
    struct Reader(std::fs::File);

    impl ReadCacheOps for Reader {
        fn len(&mut self) -> Result<u64, ()> {
            self.0.metadata().map(|metadata| metadata.len()).map_err(drop)
        }
        fn seek(&mut self, pos: u64) -> Result<u64, ()> {
            std::io::Seek::seek(&mut self.0, std::io::SeekFrom::Start(pos)).map_err(drop)
        }
        fn read(&mut self, buf: &mut [u8]) -> Result<usize, ()> {
            std::io::Read::read(&mut self.0, buf).map_err(drop)
        }
        fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), ()> {
            std::io::Read::read_exact(&mut self.0, buf).map_err(drop)
        }
    }

    /// The function symbols of an ELF file: `.symtab`, or `.dynsym` when it
    /// was stripped. `None` when the file cannot be read or parsed (the
    /// vDSO has no file; a library may have been deleted).
    pub(super) fn read_table(path: &std::path::Path) -> Option<Table> {
        let cache = ReadCache::new(Reader(std::fs::File::open(path).ok()?));
        let data = &cache;
        let header = Header::parse(data).ok()?;
        let endian = header.endian().ok()?;
        let sections = header.sections(endian, data).ok()?;
        let mut symbols = sections.symbols(endian, data, elf::SHT_SYMTAB).ok()?;
        if symbols.is_empty() {
            symbols = sections.symbols(endian, data, elf::SHT_DYNSYM).ok()?;
        }
        // The names in one read, not one read per name.
        let (offset, size) = sections.section(symbols.string_section()).ok()?.file_range(endian)?;
        let strings = data.read_bytes_at(offset, size).ok()?;
        let strings = StringTable::new(strings, 0, size);

        let mut functions: Vec<(u64, u64, &[u8])> = symbols
            .symbols()
            .iter()
            .filter(|symbol| {
                matches!(symbol.st_type(), elf::STT_FUNC | elf::STT_GNU_IFUNC)
                    && symbol.st_shndx(endian) != elf::SHN_UNDEF
                    && wide(symbol.st_value(endian)) != 0
            })
            .filter_map(|symbol| {
                let name = symbol.name(endian, strings).ok()?;
                Some((wide(symbol.st_value(endian)), wide(symbol.st_size(endian)), name))
            })
            .collect();
        functions.sort_unstable();
        functions.dedup_by(|a, b| a.0 == b.0 && a.2 == b.2);
        let mut table = Table::default();
        for group in functions.chunk_by(|a, b| a.0 == b.0) {
            let (start, size, _) = group[0];
            table
                .ranges
                .push((start, group.iter().map(|&(_, size, _)| size).max().unwrap_or(size)));
            if group.len() > 1 {
                let mut names: Vec<String> = group.iter().map(|&(_, _, name)| demangle(name)).collect();
                names.sort();
                names.dedup();
                // Copies of one generic function read as one name.
                if names.len() > 1 {
                    table.folded.insert(start, names);
                }
            }
        }
        Some(table)
    }

    /// An address or size of the file: 32 bits wide in a 32-bit ELF file.
    fn wide(word: impl Into<u64>) -> u64 {
        word.into()
    }

    /// A symbol as reports name it: Rust symbols demangled without their
    /// hashes (`#`, as the symbolizer's names are), others as they are.
    fn demangle(name: &[u8]) -> String {
        let name = String::from_utf8_lossy(name);
        match rustc_demangle::try_demangle(&name) {
            Ok(demangled) => format!("{demangled:#}"),
            Err(_) => name.into_owned(),
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod platform {
    pub(super) fn names_at(_address: usize) -> Vec<String> {
        Vec::new()
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    // Two function symbols at one address, as function merging leaves them:
    // deterministic, where asking the compiler to merge two functions is not
    // (a debug build merges nothing).
    #[cfg(target_arch = "x86_64")]
    std::arch::global_asm!(
        ".pushsection .text.taskleak_test_folded,\"ax\",@progbits",
        ".globl taskleak_test_folded_a",
        ".globl taskleak_test_folded_b",
        ".type taskleak_test_folded_a,@function",
        ".type taskleak_test_folded_b,@function",
        "taskleak_test_folded_a:",
        "taskleak_test_folded_b:",
        "nop",
        "ret",
        ".size taskleak_test_folded_a, 2",
        ".size taskleak_test_folded_b, 2",
        ".popsection",
    );

    #[cfg(target_arch = "x86_64")]
    unsafe extern "C" {
        fn taskleak_test_folded_a();
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn two_names_at_one_address_are_both_returned() {
        let address = taskleak_test_folded_a as *const () as usize;
        // A return address just past the first instruction, inside it.
        let names = names_at(address + 2);
        assert_eq!(names, ["taskleak_test_folded_a", "taskleak_test_folded_b"]);
        // The same call, answered from the cache.
        assert_eq!(names_at(address + 1), names);
    }

    #[inline(never)]
    fn only_one_name(value: u64) -> u64 {
        std::hint::black_box(value).wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }

    #[test]
    fn a_function_with_one_name_is_not_folded() {
        let address = only_one_name as fn(u64) -> u64 as usize;
        assert_eq!(only_one_name(3), 3u64.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        assert!(names_at(address + 1).is_empty());
        // No object holds address 1.
        assert!(names_at(1).is_empty());
    }

    /// std is built with LLVM's function merging: `TcpStream`'s `read` and
    /// `UdpSocket::recv` are one body, two names (what hyper-util's suite
    /// showed as a leaked thread "in `UdpSocket::recv`"). The table reads
    /// std's symbols; if a toolchain stops merging them, only that part is
    /// skipped.
    #[test]
    fn std_symbols_are_read_from_the_program() {
        use std::io::Read;
        let read = <std::net::TcpStream as Read>::read as fn(&mut std::net::TcpStream, &mut [u8]) -> _;
        let names = names_at(read as usize + 1);
        if !names.is_empty() {
            assert!(
                names
                    .iter()
                    .any(|name| name.contains("TcpStream") && name.ends_with("::read")),
                "{names:#?}"
            );
        }
        let table = platform::read_table(std::path::Path::new("/proc/self/exe")).expect("this binary parses");
        assert!(table.names_at(0).is_empty());
    }
}
