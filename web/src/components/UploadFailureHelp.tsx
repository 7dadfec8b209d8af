import { ApiError } from "../api/errors";
import { formatBytes } from "../format";

/** What a failed upload lets the user do, or why it cannot be done, beyond the error itself. */
export function UploadFailureHelp({ error, file, onOverwrite }: { error: unknown; file: File; onOverwrite: () => void }) {
  if (!(error instanceof ApiError)) return null;
  if (error.code === "FILE_ALREADY_EXISTS") {
    return (
      <div className="form-row" data-testid="upload-conflict">
        <span>A file named {file.name} is already here.</span>
        <button type="button" className="button danger" onClick={onOverwrite}>
          Replace it
        </button>
      </div>
    );
  }
  if (error.code === "PAYLOAD_TOO_LARGE") {
    const limit =
      typeof error.detail === "object" && error.detail !== null
        ? (error.detail as { limit_bytes?: unknown }).limit_bytes
        : undefined;
    return (
      <p data-testid="upload-too-large">
        {file.name} is {formatBytes(file.size)}
        {typeof limit === "number" ? `; uploads are limited to ${formatBytes(limit)}.` : ", over the upload limit."}
      </p>
    );
  }
  if (error.code === "PERMISSION_DENIED") {
    return (
      <p data-testid="upload-forbidden">
        You may not write to this volume: its owner can grant you the WRITE VOLUME privilege.
      </p>
    );
  }
  return null;
}
