import { AmbitError } from '@ambit/api';

/** Codes a caller can map to Istio's response flags (CONNECT, TLS_FAILURE, H2_HANDSHAKE_FAILURE, ...). */
export type HboneErrorCode =
  | 'AMB_ERR_HBONE_CONNECT'
  | 'AMB_ERR_HBONE_TIMEOUT'
  | 'AMB_ERR_HBONE_TLS'
  | 'AMB_ERR_HBONE_IDENTITY'
  | 'AMB_ERR_HBONE_H2'
  | 'AMB_ERR_HBONE_STATUS'
  | 'AMB_ERR_HBONE_RESET'
  | 'AMB_ERR_HBONE_KEEPALIVE'
  | 'AMB_ERR_HBONE_CLOSED';

export class HboneError extends AmbitError {
  declare readonly code: HboneErrorCode;
  /** The CONNECT response status, for AMB_ERR_HBONE_STATUS. */
  readonly status: number | undefined;
  /** The server did not process the request (refused stream, GOAWAY race): sending it again is safe. */
  readonly retriable: boolean;
  constructor(code: HboneErrorCode, message: string, options?: { cause?: unknown; status?: number; retriable?: boolean }) {
    super(code, message, options);
    this.status = options?.status;
    this.retriable = options?.retriable ?? false;
  }
}
