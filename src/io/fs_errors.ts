/**
 * Errors of file-system calls made by the file:// handler. Node's own errors name the system call
 * but not the model being saved or loaded, and some (mkdir on a read-only file system) even report
 * the wrong cause; these name the file:// operation and path, and keep the OS code (`error.code`:
 * 'ENOSPC', 'EROFS', 'EACCES', …), errno, syscall and the original error (`cause`) so that
 * callers can still branch on them.
 */

/** An Error from a file-system call, with Node's fields kept. */
export interface FileSystemError extends Error {
  code?: string;
  errno?: number;
  syscall?: string;
  path?: string;
  cause?: unknown;
}

/** The OS code of a Node file-system error ('ENOENT', …), or undefined for anything else. */
export function errorCode(e: unknown): string | undefined {
  const code = (e as {code?: unknown} | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * `${context}: cannot ${action} ${file} (${cause's message})`, keeping the cause's code, errno and
 * syscall. `file` is the path the failing call was given (the temporary or final file, the directory).
 */
export function fileSystemError(context: string, action: string, file: string, cause: unknown): FileSystemError {
  const causeMessage = (cause as {message?: unknown} | null)?.message; // not instanceof: Node's errors may come from another realm
  const message = typeof causeMessage === 'string' ? causeMessage : String(cause);
  const error: FileSystemError = new Error(`${context}: cannot ${action} ${file} (${message})`);
  const {code, errno, syscall} = (cause ?? {}) as FileSystemError;
  return Object.assign(error, {code, errno, syscall, path: file, cause});
}
