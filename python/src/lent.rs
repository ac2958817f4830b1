//! A NumPy array's memory lent to the agent's thread for one allreduce, so
//! the result is written in place (or read as the input of an out-of-place
//! one) with no copy in either direction.
//!
//! While lent, the array is marked read-only (Python code that writes to it
//! gets numpy's "read-only" error) and the lender holds a reference to it,
//! so its memory can neither be freed nor reallocated. Python code must not
//! read it either until the operation is waited for: the values change
//! underneath (as with `torch.distributed`'s asynchronous work).
#![allow(unsafe_code)]

use std::ptr::NonNull;

use numpy::npyffi::flags::NPY_ARRAY_WRITEABLE;
use numpy::{Element, PyArrayDyn, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// The data of one C-contiguous, aligned, writeable array of `T`.
#[derive(Debug)]
pub struct LentArray<T> {
    data: NonNull<T>,
    len: usize,
    /// Keeps the array, and so `data`, alive for as long as this value exists
    /// (dropped on whichever thread drops the lender; PyO3 defers the
    /// reference count change until a thread holds the interpreter).
    _array: Py<PyAny>,
}

// SAFETY: the pointer is only dereferenced through `as_mut`, by the one
// thread that owns this value at a time; the memory it points to belongs to
// an array kept alive by `_array` (itself `Send`), and `T` is a plain number.
unsafe impl<T: Element + Send> Send for LentArray<T> {}

impl<T: Element> LentArray<T> {
    /// Lends the array's memory and marks the array read-only; the caller
    /// must call [`give_back`] once the agent is done with it.
    pub fn lend(array: &Bound<'_, PyArrayDyn<T>>) -> PyResult<LentArray<T>> {
        if !array.is_c_contiguous() {
            return Err(PyValueError::new_err(
                "the array must be C-contiguous (use numpy.ascontiguousarray and copy the result back)",
            ));
        }
        let flags = array.getattr("flags")?;
        if !flags.getattr("aligned")?.extract::<bool>()? {
            return Err(PyValueError::new_err("the array's data is not aligned"));
        }
        if !flags.getattr("writeable")?.extract::<bool>()? {
            return Err(PyValueError::new_err(
                "the array is read-only (an allreduce on it may still be pending: wait for it first)",
            ));
        }
        // Refuses arrays a Rust extension is borrowing at this moment.
        drop(
            array.try_readwrite().map_err(|e| {
                PyValueError::new_err(format!("the array is in use elsewhere: {e}"))
            })?,
        );
        flags.setattr("writeable", false)?;
        let len = array.len();
        let data = if len == 0 {
            NonNull::dangling()
        } else {
            NonNull::new(array.data()).ok_or_else(|| PyValueError::new_err("array without data"))?
        };
        Ok(LentArray {
            data,
            len,
            _array: array.as_any().clone().unbind(),
        })
    }
}

impl<T> LentArray<T> {
    /// The addresses of the lent bytes.
    fn bytes(&self) -> std::ops::Range<usize> {
        let start = self.data.as_ptr() as usize;
        start..start + self.len * std::mem::size_of::<T>()
    }
}

/// Lends `input` and `output` for one out-of-place allreduce (both
/// read-only while lent, as [`LentArray::lend`]). Arrays whose memory
/// overlaps are refused: the agent reads one while it writes the other.
pub fn lend_pair<T: Element>(
    input: &Bound<'_, PyArrayDyn<T>>,
    output: &Bound<'_, PyArrayDyn<T>>,
) -> PyResult<(LentArray<T>, LentArray<T>)> {
    let input_lent = LentArray::lend(input)?;
    let output_lent = match LentArray::lend(output) {
        Ok(lent) => lent,
        Err(e) => {
            give_back(input.as_any())?;
            return Err(e);
        }
    };
    let (a, b) = (input_lent.bytes(), output_lent.bytes());
    if a.start < b.end && b.start < a.end {
        give_back(input.as_any())?;
        give_back(output.as_any())?;
        return Err(PyValueError::new_err(
            "out shares memory with the array: pass out=None (or the array itself) to sum in place",
        ));
    }
    Ok((input_lent, output_lent))
}

impl<T> AsRef<[T]> for LentArray<T> {
    fn as_ref(&self) -> &[T] {
        // SAFETY: as for `as_mut` below; this shared borrow of `self` is the
        // only way to reach the memory from Rust while it lasts.
        unsafe { std::slice::from_raw_parts(self.data.as_ptr(), self.len) }
    }
}

impl<T> AsMut<[T]> for LentArray<T> {
    fn as_mut(&mut self) -> &mut [T] {
        // SAFETY: `data` and `len` describe the element buffer of an array
        // checked at `lend` to be C-contiguous (one block of `len` elements
        // of `T`), aligned and writeable, or a dangling pointer for zero
        // elements. The array is alive (`_array`), numpy does not reallocate
        // the data of an array that has other references, Python cannot
        // write to it while it is marked read-only, and this `&mut self`
        // borrow is the only way to reach it from Rust.
        unsafe { std::slice::from_raw_parts_mut(self.data.as_ptr(), self.len) }
    }
}

/// Makes a lent array writeable again (after the agent has given it back).
///
/// numpy refuses `flags.writeable = True` on an array that does not own its
/// memory unless its base is a writeable ndarray (a `torch.Tensor.numpy()`
/// view is not), so the flag [`LentArray::lend`] cleared is set back
/// directly: it was set when the array was lent, so this restores the
/// array's own state and grants nothing it did not have.
pub fn give_back(array: &Bound<'_, PyAny>) -> PyResult<()> {
    let array = array.cast::<PyUntypedArray>()?;
    // SAFETY: `as_array_ptr` points to the live array object `array`
    // borrows; the interpreter is attached (`Bound`), which serializes
    // access to the object's fields, and only the flags word is written.
    unsafe { (*array.as_array_ptr()).fields.flags |= NPY_ARRAY_WRITEABLE };
    Ok(())
}
