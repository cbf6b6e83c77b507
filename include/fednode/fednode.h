/*
 * libfednode: the umbrella header.
 *
 * Copyright the libfednode authors. SPDX-License-Identifier: Apache-2.0
 */
#ifndef FEDNODE_H
#define FEDNODE_H

/** @file fednode/fednode.h
 *  @brief Includes every public module header. */

#include "fednode/common.h"
#include "fednode/deid.h"
#include "fednode/dicom.h"
#include "fednode/exchange.h"
#include "fednode/fedavg.h"
#include "fednode/model.h"
#include "fednode/registry.h"
#include "fednode/transport.h"
#include "fednode/version.h"

#endif
