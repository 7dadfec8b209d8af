import { useMutation } from "@tanstack/react-query";
import { useId, useRef } from "react";
import { api } from "../api/client";
import { ErrorPanel } from "./ErrorPanel";

/** Deletes one file after the user confirms in a modal dialog (Escape or Cancel keeps it). */
export function DeleteFileButton({
  catalog,
  schema,
  volume,
  path,
  name,
  onDeleted,
}: {
  catalog: string;
  schema: string;
  volume: string;
  path: string;
  name: string;
  onDeleted: () => void;
}) {
  const dialog = useRef<HTMLDialogElement>(null);
  const headingId = useId();
  const remove = useMutation({
    mutationFn: () =>
      api.delete("/api/volumes/{catalog}/{schema}/{volume}/files/content", {
        path: { catalog, schema, volume },
        query: { path },
      }),
    onSuccess: () => {
      dialog.current?.close();
      onDeleted();
    },
  });
  return (
    <>
      <button
        type="button"
        className="button secondary small-button"
        aria-label={`Delete ${name}`}
        onClick={() => {
          remove.reset();
          dialog.current?.showModal();
        }}
      >
        Delete
      </button>
      <dialog ref={dialog} className="confirm-dialog" aria-labelledby={headingId} data-testid="delete-dialog">
        <h3 id={headingId}>Delete {name}?</h3>
        <p>
          <code className="path">/{path}</code> will be removed from the volume. This cannot be undone.
        </p>
        {remove.isError && <ErrorPanel error={remove.error} />}
        <div className="actions">
          <button type="button" className="button secondary" onClick={() => dialog.current?.close()}>
            Cancel
          </button>
          <button type="button" className="button danger" disabled={remove.isPending} onClick={() => remove.mutate()}>
            {remove.isPending ? "Deleting…" : "Delete"}
          </button>
        </div>
      </dialog>
    </>
  );
}
