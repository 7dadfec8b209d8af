import { useEffect, useRef, useState, type FormEvent } from "react";
import { urlOf } from "../api/client";
import { putWithProgress } from "../api/upload";
import { formatBytes } from "../format";
import { joinPath } from "../volumePaths";
import { ErrorPanel } from "./ErrorPanel";
import { UploadFailureHelp } from "./UploadFailureHelp";

type Upload =
  | { state: "idle" }
  | { state: "sending"; sent: number; total: number }
  | { state: "done"; name: string; size: number }
  | { state: "failed"; error: unknown; file: File };

/** Uploads one file into the directory on screen, showing how much has been sent. */
export function UploadForm({
  catalog,
  schema,
  volume,
  dir,
  onUploaded,
}: {
  catalog: string;
  schema: string;
  volume: string;
  dir: string;
  onUploaded: () => void;
}) {
  const [file, setFile] = useState<File | null>(null);
  const [upload, setUpload] = useState<Upload>({ state: "idle" });
  const input = useRef<HTMLInputElement>(null);
  const controller = useRef<AbortController | null>(null);

  useEffect(() => () => controller.current?.abort(), []);

  const send = async (chosen: File, overwrite: boolean) => {
    const abort = new AbortController();
    controller.current = abort;
    setUpload({ state: "sending", sent: 0, total: chosen.size });
    const url = urlOf("put", "/api/volumes/{catalog}/{schema}/{volume}/files/content", {
      path: { catalog, schema, volume },
      query: { path: joinPath(dir, chosen.name), overwrite },
    });
    try {
      await putWithProgress(url, chosen, (sent, total) => setUpload({ state: "sending", sent, total }), abort.signal);
      setUpload({ state: "done", name: chosen.name, size: chosen.size });
      setFile(null);
      if (input.current) input.current.value = "";
      onUploaded();
    } catch (e) {
      setUpload(abort.signal.aborted ? { state: "idle" } : { state: "failed", error: e, file: chosen });
    } finally {
      controller.current = null;
    }
  };

  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (file) void send(file, false);
  };

  const percent = upload.state === "sending" && upload.total > 0 ? Math.round((100 * upload.sent) / upload.total) : 0;

  return (
    <form className="upload-form" onSubmit={submit} aria-label="Upload a file" data-testid="upload-form">
      <div className="form-row">
        <div className="field upload-field">
          <label htmlFor="upload-file">Upload to /{dir}</label>
          <input
            ref={input}
            id="upload-file"
            type="file"
            onChange={(e) => {
              setFile(e.target.files?.[0] ?? null);
              setUpload({ state: "idle" });
            }}
          />
        </div>
        {upload.state === "sending" ? (
          <button type="button" className="button secondary" onClick={() => controller.current?.abort()}>
            Cancel upload
          </button>
        ) : (
          <button type="submit" className="button primary" disabled={!file} data-track="volume-upload">
            Upload
          </button>
        )}
      </div>
      {upload.state === "sending" && (
        <div className="upload-progress">
          <progress id="upload-progress" max={100} value={percent} aria-label="Upload progress" />
          <span className="muted small" aria-live="polite">
            {formatBytes(upload.sent)} of {formatBytes(upload.total)} ({percent}%)
          </span>
        </div>
      )}
      {upload.state === "done" && (
        <p className="field-hint ok" role="status" data-testid="upload-done">
          Uploaded {upload.name} ({formatBytes(upload.size)}).
        </p>
      )}
      {upload.state === "failed" && (
        <>
          <ErrorPanel error={upload.error} />
          <UploadFailureHelp error={upload.error} file={upload.file} onOverwrite={() => void send(upload.file, true)} />
        </>
      )}
    </form>
  );
}
